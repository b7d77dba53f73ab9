//! Market data as the core sees it: venue order books and the consolidated book across venues, and the pure
//! pricing functions that turn them into executable and client prices.
//!
//! Units: a price is an integer count of `10^-price_scale` quote units per one whole base unit (the
//! instrument's `price_scale`); a quantity is an integer count of base-asset minor units. No floats.

pub mod book;
pub mod cross;
pub mod pricing;
pub mod routing;

pub use book::{BookError, Level, VenueBook, BOOK_LEVELS_MAX, VENUES_MAX};
pub use pricing::{Executable, PricingError, Side};
