//! Smart order routing of a hedge: which venue takes how much, at what limit price.
//!
//! Pure: the venues' books, taker fees and spendable balances come in as values. The walk takes the levels of
//! every allowed venue in order of their **all-in** price (a buy: `price × (1 + fee)`, a sell:
//! `price × (1 − fee)`), best first, stopping at the slippage limit, at each venue's balance (a buy spends the
//! quote asset, fee included; a sell spends the base asset) and when the quantity is routed. Each venue's share
//! is then cut into child orders no larger than the largest hedge order, each limited at the slippage bound: an
//! immediate-or-cancel order at the walk's own worst price failed whenever the book ticked between the walk and
//! the venue (a few percent of the demo's hedges, every attempt of some), while the bound is the price the
//! operator allowed; the venue fills at its levels, so the walk's prices are what a still book gives.
//!
//! Ties (equal all-in prices) go to the venue named first alphabetically, then to the better raw price, so the
//! same inputs always give the same children.

use super::book::{Level, VenueBook};
use super::pricing::{self, Side, CENTI_BPS_ONE};

/// Child orders one routing decision may produce.
pub const ROUTE_CHILDREN_MAX: usize = 32;
/// Largest taker fee a venue may declare: 10 % (1,000 bps), in hundredths of a basis point.
pub const VENUE_FEE_CENTI_BPS_MAX: i128 = CENTI_BPS_ONE / 10;

/// What the router knows of one venue besides its book.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct VenueTerms {
    pub venue: String,
    /// Taker fee, hundredths of a basis point (0..=100,000).
    pub taker_fee_centi_bps: i128,
    /// The desk's spendable balance at the venue in the quote asset (minor units): what a buy may spend.
    pub quote_available: i128,
    /// The desk's spendable balance at the venue in the base asset (minor units): what a sell may deliver.
    pub base_available: i128,
}

/// What to route: a side (the desk's: `Buy` takes asks), a quantity and the instrument's units.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RouteRequest {
    pub side: Side,
    /// Base minor units, > 0.
    pub quantity: i128,
    pub quantity_step: i128,
    /// Largest child order, base minor units (> 0).
    pub child_quantity_max: i128,
    /// Worst raw price a level may have to be taken (the slippage bound).
    pub limit_price: i128,
    pub price_scale: u8,
    pub base_scale: u8,
    pub quote_scale: u8,
}

/// One child order the router decided.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ChildRoute {
    pub venue: String,
    /// Base minor units.
    pub quantity: i128,
    /// The order's limit: the request's slippage bound (the walk's levels at this venue are all within it).
    pub limit_price: i128,
    /// The walk's expected cost (buy) or proceeds (sell) before fees, quote minor units.
    pub quote_amount: i128,
}

struct Candidate {
    venue: usize,
    price: i128,
    quantity: i128,
    /// price × (10^6 ± fee): comparable across venues.
    all_in: i128,
}

/// The best raw price on the side the desk takes (lowest ask for a buy, highest bid for a sell) across `books`.
pub fn arrival_price(books: &[VenueBook], side: Side) -> Option<i128> {
    let best = books.iter().filter_map(|book| levels(book, side).first().map(|level| level.price));
    match side {
        Side::Buy => best.min(),
        Side::Sell => best.max(),
    }
}

/// The worst price `slippage_centi_bps` away from `arrival` (a buy: above, rounded down; a sell: below,
/// rounded up), so the bound is never looser than asked.
pub fn slippage_limit(arrival: i128, side: Side, slippage_centi_bps: i128) -> Option<i128> {
    let factor = match side {
        Side::Buy => CENTI_BPS_ONE.checked_add(slippage_centi_bps)?,
        Side::Sell => CENTI_BPS_ONE.checked_sub(slippage_centi_bps)?,
    };
    let product = arrival.checked_mul(factor)?;
    Some(match side {
        Side::Buy => product.div_euclid(CENTI_BPS_ONE),
        Side::Sell => product.div_euclid(CENTI_BPS_ONE) + i128::from(product.rem_euclid(CENTI_BPS_ONE) != 0),
    })
}

fn levels(book: &VenueBook, side: Side) -> &[super::book::Level] {
    match side {
        Side::Buy => &book.asks,
        Side::Sell => &book.bids,
    }
}

/// Routes `request` over `books` (one per venue; venues without terms are not used). Returns the child orders,
/// best all-in first; their quantities sum to at most `request.quantity` (less when the books, balances or
/// slippage bound do not reach it), each a positive multiple of the quantity step.
pub fn route(request: &RouteRequest, books: &[VenueBook], terms: &[VenueTerms]) -> Vec<ChildRoute> {
    if request.quantity <= 0 || request.quantity_step <= 0 || request.child_quantity_max < request.quantity_step {
        return Vec::new();
    }
    let mut cursors = cursors(request, books, terms);
    let candidates = std::iter::from_fn(|| next_best(request, books, &mut cursors));
    let shares = walk(request, books, terms, candidates);
    split(request, books, shares)
}

/// One allowed venue's levels on the side the desk takes, best first, not yet walked.
struct Cursor<'a> {
    venue: usize,
    levels: &'a [Level],
    /// 10^6 ± the venue's fee: a level's all-in price is its price times this.
    factor: i128,
}

impl Cursor<'_> {
    /// The venue's next level the walk may take: within the slippage bound (levels are best first, so none after
    /// the first out of bounds is), and with an all-in price that does not overflow (such a level is skipped).
    fn head(&mut self, request: &RouteRequest) -> Option<Candidate> {
        while let Some(level) = self.levels.first() {
            let reachable = match request.side {
                Side::Buy => level.price <= request.limit_price,
                Side::Sell => level.price >= request.limit_price,
            };
            if !reachable {
                self.levels = &[];
                return None;
            }
            match level.price.checked_mul(self.factor) {
                Some(all_in) => {
                    return Some(Candidate { venue: self.venue, price: level.price, quantity: level.quantity, all_in })
                }
                None => self.levels = &self.levels[1..],
            }
        }
        None
    }
}

/// A cursor per venue that has terms with a fee in range.
fn cursors<'a>(request: &RouteRequest, books: &'a [VenueBook], terms: &[VenueTerms]) -> Vec<Cursor<'a>> {
    let mut cursors = Vec::with_capacity(books.len());
    for (venue, book) in books.iter().enumerate() {
        let Some(fee) = terms.iter().find(|terms| terms.venue == book.venue).map(|terms| terms.taker_fee_centi_bps)
        else {
            continue;
        };
        if !(0..=VENUE_FEE_CENTI_BPS_MAX).contains(&fee) {
            continue;
        }
        let factor = match request.side {
            Side::Buy => CENTI_BPS_ONE + fee,
            Side::Sell => CENTI_BPS_ONE - fee,
        };
        cursors.push(Cursor { venue, levels: levels(book, request.side), factor });
    }
    cursors
}

/// The best level across the venues' cursors, taken off its cursor: the levels in the order of their all-in
/// price (then the venue's name, then the raw price), as sorting every level would give, but merged lazily
/// (each venue's levels are already in that order, its fee being one factor), so a hedge that fills in the first
/// levels never looks at the rest of the books.
fn next_best(request: &RouteRequest, books: &[VenueBook], cursors: &mut [Cursor<'_>]) -> Option<Candidate> {
    let mut best: Option<(usize, Candidate)> = None;
    for (index, cursor) in cursors.iter_mut().enumerate() {
        let Some(head) = cursor.head(request) else { continue };
        let better = match &best {
            None => true,
            Some((_, incumbent)) => ranks_before(request.side, books, &head, incumbent),
        };
        if better {
            best = Some((index, head));
        }
    }
    let (index, candidate) = best?;
    cursors[index].levels = &cursors[index].levels[1..];
    Some(candidate)
}

/// Whether `a` is walked before `b`: better all-in price, then the venue named first, then the better raw price.
fn ranks_before(side: Side, books: &[VenueBook], a: &Candidate, b: &Candidate) -> bool {
    let by_price = match side {
        Side::Buy => a.all_in.cmp(&b.all_in),
        Side::Sell => b.all_in.cmp(&a.all_in),
    };
    let order = by_price.then_with(|| books[a.venue].venue.cmp(&books[b.venue].venue)).then_with(|| match side {
        Side::Buy => a.price.cmp(&b.price),
        Side::Sell => b.price.cmp(&a.price),
    });
    order == std::cmp::Ordering::Less
}

/// Per venue (index into `books`): quantity taken, quote amount.
type Share = (i128, i128);

fn walk(
    request: &RouteRequest,
    books: &[VenueBook],
    terms: &[VenueTerms],
    candidates: impl Iterator<Item = Candidate>,
) -> Vec<Share> {
    let mut shares = vec![(0i128, 0i128); books.len()];
    let mut budget: Vec<i128> = books
        .iter()
        .map(|book| {
            terms.iter().find(|terms| terms.venue == book.venue).map_or(0, |terms| match request.side {
                Side::Buy => terms.quote_available,
                Side::Sell => terms.base_available,
            })
        })
        .collect();
    let fees: Vec<i128> = books
        .iter()
        .map(|book| terms.iter().find(|terms| terms.venue == book.venue).map_or(0, |terms| terms.taker_fee_centi_bps))
        .collect();
    let mut remaining = request.quantity - request.quantity.rem_euclid(request.quantity_step);
    for candidate in candidates {
        if remaining <= 0 {
            break;
        }
        let venue = candidate.venue;
        let mut take = candidate.quantity.min(remaining);
        take -= take.rem_euclid(request.quantity_step);
        take = match request.side {
            Side::Sell => {
                let room = budget[venue] - budget[venue].rem_euclid(request.quantity_step);
                take.min(room.max(0))
            }
            Side::Buy => affordable(request, candidate.price, take, budget[venue], fees[venue]),
        };
        if take <= 0 {
            continue;
        }
        let Ok(amount) = amount_of(request, candidate.price, take) else { continue };
        let spent = match request.side {
            Side::Buy => amount + pricing::fee_amount(amount, fees[venue]).unwrap_or(i128::MAX / 4),
            Side::Sell => take,
        };
        budget[venue] -= spent;
        let share = &mut shares[venue];
        share.0 += take;
        share.1 += amount;
        remaining -= take;
    }
    shares
}

fn amount_of(request: &RouteRequest, price: i128, quantity: i128) -> Result<i128, pricing::PricingError> {
    let buying = request.side == Side::Buy;
    pricing::quote_amount(price, quantity, request.price_scale, request.base_scale, request.quote_scale, buying)
}

/// The largest multiple of the step up to `quantity` whose cost at `price`, fee included, fits `budget`.
/// The cost is non-decreasing in the quantity, so a binary search over step counts; it runs only at the level
/// where a venue's balance binds (after that the venue has nothing left), so at most once per venue.
fn affordable(request: &RouteRequest, price: i128, quantity: i128, budget: i128, fee: i128) -> i128 {
    let cost = |quantity: i128| {
        amount_of(request, price, quantity)
            .ok()
            .and_then(|amount| pricing::fee_amount(amount, fee).ok().and_then(|fee| amount.checked_add(fee)))
    };
    if quantity <= 0 || budget <= 0 {
        return 0;
    }
    if cost(quantity).is_some_and(|cost| cost <= budget) {
        return quantity;
    }
    let (mut low, mut high) = (0i128, quantity / request.quantity_step);
    while low < high {
        let middle = low + (high - low + 1) / 2;
        if cost(middle * request.quantity_step).is_some_and(|cost| cost <= budget) {
            low = middle;
        } else {
            high = middle - 1;
        }
    }
    low * request.quantity_step
}

fn split(request: &RouteRequest, books: &[VenueBook], shares: Vec<Share>) -> Vec<ChildRoute> {
    let child_max = request.child_quantity_max - request.child_quantity_max.rem_euclid(request.quantity_step);
    let mut order: Vec<usize> = (0..shares.len()).filter(|venue| shares[*venue].0 > 0).collect();
    // Biggest share first: if the child cap cuts the list, the venues that carry most of the hedge stay in it.
    order.sort_by(|a, b| shares[*b].0.cmp(&shares[*a].0).then_with(|| books[*a].venue.cmp(&books[*b].venue)));
    let mut children = Vec::new();
    for venue in order {
        let (mut quantity, quote_amount) = shares[venue];
        let total = quantity;
        while quantity > 0 && children.len() < ROUTE_CHILDREN_MAX {
            let child = quantity.min(child_max);
            // The quote amount is shared pro rata (indicative only: the venue's fills are what is booked).
            let share_amount = quote_amount.checked_mul(child).map_or(0, |product| product / total);
            children.push(ChildRoute {
                venue: books[venue].venue.clone(),
                quantity: child,
                limit_price: request.limit_price,
                quote_amount: share_amount,
            });
            quantity -= child;
        }
    }
    debug_assert!(children.iter().map(|child| child.quantity).sum::<i128>() <= request.quantity);
    children
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::book::Level;
    use crate::time::TimestampMs;

    fn book(venue: &str, asks: &[(i128, i128)]) -> VenueBook {
        VenueBook {
            venue: venue.into(),
            instrument: "BTC-USD".into(),
            bids: vec![Level { price: 1, quantity: 1 }],
            asks: asks.iter().map(|(price, quantity)| Level { price: *price, quantity: *quantity }).collect(),
            as_of: TimestampMs(0),
        }
    }

    fn terms(venue: &str, fee_bps: i128, quote_available: i128) -> VenueTerms {
        VenueTerms { venue: venue.into(), taker_fee_centi_bps: fee_bps * 100, quote_available, base_available: 0 }
    }

    fn request(quantity: i128) -> RouteRequest {
        RouteRequest {
            side: Side::Buy,
            quantity,
            quantity_step: 1,
            child_quantity_max: 1_000_000_000,
            limit_price: 6_000_000,
            price_scale: 2,
            base_scale: 8,
            quote_scale: 2,
        }
    }

    const BTC: i128 = 100_000_000;

    #[test]
    fn the_cheaper_all_in_venue_is_taken_first() {
        // "a" is cheaper raw but its 50 bps fee makes it dearer than "b" at 10 bps.
        let books = [book("a", &[(5_000_000, BTC)]), book("b", &[(5_010_000, BTC)])];
        let terms = [terms("a", 50, i128::MAX / 4), terms("b", 10, i128::MAX / 4)];
        let children = route(&request(BTC), &books, &terms);
        assert_eq!(children.len(), 1);
        assert_eq!(children[0].venue, "b");
        assert_eq!(children[0].quantity, BTC);
    }

    #[test]
    fn a_venue_balance_caps_its_share_and_the_rest_goes_elsewhere() {
        let books = [book("a", &[(5_000_000, 2 * BTC)]), book("b", &[(5_100_000, 2 * BTC)])];
        // "a" can pay for half a bitcoin (25,000.00 USD) only.
        let terms = [terms("a", 0, 2_500_000), terms("b", 0, i128::MAX / 4)];
        let children = route(&request(2 * BTC), &books, &terms);
        let at = |venue: &str| children.iter().filter(|child| child.venue == venue).map(|c| c.quantity).sum::<i128>();
        assert_eq!(at("a"), BTC / 2);
        assert_eq!(at("b"), 3 * BTC / 2);
    }

    #[test]
    fn the_slippage_bound_and_child_size_are_kept() {
        let books = [book("a", &[(5_000_000, BTC), (7_000_000, 10 * BTC)])];
        let terms = [terms("a", 0, i128::MAX / 4)];
        let mut request = request(3 * BTC);
        request.child_quantity_max = 4 * BTC / 10;
        let children = route(&request, &books, &terms);
        assert_eq!(children.iter().map(|child| child.quantity).sum::<i128>(), BTC, "the 70,000 level is out of bounds");
        assert!(children.iter().all(|child| child.quantity <= 4 * BTC / 10 && child.limit_price == 6_000_000));
        assert_eq!(children.len(), 3);
    }

    /// The walk's order by sorting every reachable level (what the merge replaced), for the property below.
    fn sorted_levels(request: &RouteRequest, books: &[VenueBook], terms: &[VenueTerms]) -> Vec<(usize, i128, i128)> {
        let mut all: Vec<Candidate> = Vec::new();
        for mut cursor in cursors(request, books, terms) {
            while let Some(head) = cursor.head(request) {
                cursor.levels = &cursor.levels[1..];
                all.push(head);
            }
        }
        all.sort_by(|a, b| match (ranks_before(request.side, books, a, b), ranks_before(request.side, books, b, a)) {
            (true, _) => std::cmp::Ordering::Less,
            (_, true) => std::cmp::Ordering::Greater,
            _ => std::cmp::Ordering::Equal,
        });
        all.into_iter().map(|candidate| (candidate.venue, candidate.price, candidate.quantity)).collect()
    }

    proptest::proptest! {
        /// The lazy merge visits the levels in exactly the order sorting them all gives (ties included), on either
        /// side, with fees, and with levels beyond the slippage bound.
        #[test]
        fn the_merge_walks_levels_in_sorted_order(
            venues in proptest::collection::vec(
                (0i128..=60, proptest::collection::vec((1i128..40, 1i128..5), 0..12)),
                1..5,
            ),
            sell in proptest::bool::ANY,
            limit in 1i128..400,
        ) {
            let side = if sell { Side::Sell } else { Side::Buy };
            let mut books = Vec::new();
            let mut all_terms = Vec::new();
            for (index, (fee_bps, steps)) in venues.iter().enumerate() {
                let name = format!("v{index}");
                // Strictly better-first prices from cumulative steps: asks rise, bids fall.
                let mut price = 200i128;
                let mut levels = Vec::new();
                for (step, quantity) in steps {
                    price = if sell { price - step } else { price + step };
                    if price <= 0 {
                        break;
                    }
                    levels.push(Level { price: price * 1_000, quantity: *quantity * BTC });
                }
                let mut book = book(&name, &[]);
                if sell { book.bids = levels } else { book.asks = levels }
                books.push(book);
                all_terms.push(terms(&name, *fee_bps, i128::MAX / 4));
            }
            let mut request = request(1_000 * BTC);
            request.side = side;
            request.limit_price = limit * 1_000;
            let mut cursors = cursors(&request, &books, &all_terms);
            let merged: Vec<_> = std::iter::from_fn(|| next_best(&request, &books, &mut cursors))
                .map(|candidate| (candidate.venue, candidate.price, candidate.quantity))
                .collect();
            proptest::prop_assert_eq!(merged, sorted_levels(&request, &books, &all_terms));
        }
    }

    #[test]
    fn slippage_limits_round_inside_the_bound() {
        assert_eq!(slippage_limit(10_001, Side::Buy, 500), Some(10_006)); // 10,006.0005 down
        assert_eq!(slippage_limit(10_001, Side::Sell, 500), Some(9_996)); // 9,995.9995 up
    }
}
