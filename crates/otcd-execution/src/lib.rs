//! otcd's exchange order entry: adapters of the services' [`VenueExecution`] port that trade at real venues
//! ([`binance::BinanceSpot`]: Binance spot over its signed REST API, the wire format in [`binance_wire`]), and
//! [`ByVenue`], the composite the hedge worker is given: each venue's orders go to that venue's adapter (a real
//! one where the venues file gives credentials, the paper venue for the rest).

pub mod binance;
pub mod binance_wire;

use otcd_services::ports::{VenueAccount, VenueError, VenueExecution, VenueOrder, VenueOrderStatus};
use std::collections::HashMap;
use std::sync::Arc;

/// Sends each venue's calls to the adapter that trades there, and every other venue's to `fallback`.
pub struct ByVenue {
    adapters: HashMap<String, Arc<dyn VenueExecution>>,
    fallback: Arc<dyn VenueExecution>,
}

impl ByVenue {
    pub fn new(fallback: Arc<dyn VenueExecution>) -> ByVenue {
        ByVenue { adapters: HashMap::new(), fallback }
    }

    /// Routes `venue` to `adapter` (its accounts replace the fallback's for that venue).
    pub fn with(mut self, venue: &str, adapter: Arc<dyn VenueExecution>) -> ByVenue {
        self.adapters.insert(venue.to_owned(), adapter);
        self
    }

    fn adapter(&self, venue: &str) -> &dyn VenueExecution {
        self.adapters.get(venue).map_or(self.fallback.as_ref(), Arc::as_ref)
    }
}

impl VenueExecution for ByVenue {
    fn accounts(&self) -> Vec<VenueAccount> {
        let mut accounts: Vec<VenueAccount> = self
            .fallback
            .accounts()
            .into_iter()
            .filter(|account| !self.adapters.contains_key(&account.venue))
            .collect();
        for (venue, adapter) in &self.adapters {
            accounts.extend(adapter.accounts().into_iter().filter(|account| &account.venue == venue));
        }
        accounts
    }

    fn place(&self, order: &VenueOrder) -> Result<VenueOrderStatus, VenueError> {
        self.adapter(&order.venue).place(order)
    }

    fn cancel(&self, venue: &str, client_order_id: &str) -> Result<VenueOrderStatus, VenueError> {
        self.adapter(venue).cancel(venue, client_order_id)
    }

    fn status(&self, venue: &str, client_order_id: &str) -> Result<Option<VenueOrderStatus>, VenueError> {
        self.adapter(venue).status(venue, client_order_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use otcd_core::market::Side;
    use std::collections::BTreeMap;

    /// Answers with its own name as the venue order id.
    struct Named(&'static str, Vec<&'static str>);

    impl VenueExecution for Named {
        fn accounts(&self) -> Vec<VenueAccount> {
            let account = |venue: &str| VenueAccount {
                venue: venue.to_owned(),
                taker_fee_centi_bps: 0,
                balances: BTreeMap::new(),
            };
            self.1.iter().map(|venue| account(venue)).collect()
        }
        fn place(&self, _: &VenueOrder) -> Result<VenueOrderStatus, VenueError> {
            Ok(VenueOrderStatus { venue_order_id: self.0.to_owned(), open: false, fills: Vec::new(), reason: None })
        }
        fn cancel(&self, venue: &str, id: &str) -> Result<VenueOrderStatus, VenueError> {
            self.status(venue, id).map(Option::unwrap)
        }
        fn status(&self, _: &str, _: &str) -> Result<Option<VenueOrderStatus>, VenueError> {
            self.place(&order("x")).map(Some)
        }
    }

    fn order(venue: &str) -> VenueOrder {
        VenueOrder {
            venue: venue.to_owned(),
            client_order_id: "hg_0000000001-1-0".into(),
            instrument: "BTC-USDT".into(),
            side: Side::Buy,
            quantity: 1,
            limit_price: 1,
        }
    }

    #[test]
    fn each_venue_goes_to_its_adapter_and_the_rest_to_the_fallback() {
        let paper = Arc::new(Named("paper", vec!["manual", "binance"]));
        let real = Arc::new(Named("real", vec!["binance"]));
        let composite = ByVenue::new(paper).with("binance", real);
        assert_eq!(composite.place(&order("binance")).unwrap().venue_order_id, "real");
        assert_eq!(composite.place(&order("manual")).unwrap().venue_order_id, "paper");
        assert_eq!(composite.status("binance", "x").unwrap().unwrap().venue_order_id, "real");
        assert_eq!(composite.cancel("manual", "x").unwrap().venue_order_id, "paper");
        let venues: Vec<String> = composite.accounts().into_iter().map(|account| account.venue).collect();
        assert_eq!(venues, ["manual", "binance"], "one account per venue, the real adapter's for binance");
    }
}
