//! Lookups that replaced walks over the desk's histories (issue #16: per-command work must not grow with the
//! desk's history): desk fundings by reference, the top-up awaiting approval per asset, top-ups by id, and the
//! count of active admin keys. Each is derived state, so each is checked on a desk restored from a snapshot
//! (serde round trip plus `rebuild_indexes`, as `otcd-host` loads one) as well as on the running desk.
//! `cargo bench -p otcd-core --bench history_independence` measures that their cost does not grow.

use otcd_core::catalog::AssetCode;
use otcd_core::engine::custody::{CustodyPolicy, TopUpStatus};
use otcd_core::engine::model::{KeyAlgorithm, KeyOwner, Scope};
use otcd_core::engine::{fixtures, Command, CommandError, Desk, NewKey, Outcome};
use otcd_core::ids::{ClientReference, KeyId};
use otcd_testkit::sim::record;

fn restored(desk: &Desk) -> Desk {
    let mut restored: Desk = serde_json::from_slice(&serde_json::to_vec(desk).unwrap()).unwrap();
    restored.rebuild_indexes();
    restored
}

fn initialized() -> Desk {
    let mut desk = Desk::new();
    desk.execute(&record(1, fixtures::initialize_desk())).unwrap();
    desk
}

fn fund(reference: &str, amount: i128) -> Command {
    Command::FundDesk {
        asset: AssetCode::parse("BTC").unwrap(),
        amount,
        reference: ClientReference::parse(reference).unwrap(),
    }
}

#[test]
fn a_repeated_funding_is_recognized_by_its_reference_before_and_after_a_restore() {
    let mut desk = initialized();
    for index in 0..50 {
        desk.execute(&record(10 + index, fund(&format!("f-{index}"), 1_000 + index as i128))).unwrap();
    }
    for desk in [&mut desk.clone(), &mut restored(&desk)] {
        let repeated = desk.execute(&record(100, fund("f-7", 1_007))).unwrap();
        assert!(!repeated.changed);
        let Outcome::Funding { funding, repeated: true } = repeated.outcome else { panic!("{repeated:?}") };
        assert_eq!(funding.funding_id, "fund_00000008");
        let error = desk.execute(&record(101, fund("f-7", 5))).unwrap_err();
        assert!(matches!(error, CommandError::Conflict { .. }), "{error:?}");
        assert!(desk.execute(&record(102, fund("f-new", 5))).unwrap().changed);
    }
}

#[test]
fn one_top_up_awaits_per_asset_and_is_found_by_its_id_before_and_after_a_restore() {
    let mut desk = initialized();
    let btc = AssetCode::parse("BTC").unwrap();
    desk.execute(&record(2, fund("cold", 10_000_000))).unwrap();
    // The funding lands in hot; a low maximum sweeps all but 5,000 to cold.
    let sweep = CustodyPolicy { asset: btc, hot_min: 1_000, hot_target: 5_000, hot_max: 5_000 };
    desk.execute(&record(3, Command::PutCustodyPolicy(sweep))).unwrap();
    assert!(desk.top_ups().is_empty());
    let policy = CustodyPolicy { asset: btc, hot_min: 6_000, hot_target: 8_000, hot_max: 1_000_000_000 };
    desk.execute(&record(3, Command::PutCustodyPolicy(policy.clone()))).unwrap();
    assert_eq!(desk.top_ups().len(), 1, "hot is below the minimum: a top-up is requested");
    for desk in [&mut desk.clone(), &mut restored(&desk)] {
        // The policy again: a top-up already awaits, so no second one.
        desk.execute(&record(4, Command::PutCustodyPolicy(policy.clone()))).unwrap();
        assert_eq!(desk.top_ups().len(), 1);
        let missing = desk.execute(&record(5, Command::ApproveTopUp { top_up_id: "tu_00000002".into() }));
        assert!(matches!(missing, Err(CommandError::NotFound { .. })), "{missing:?}");
        let approved = desk.execute(&record(6, Command::ApproveTopUp { top_up_id: "tu_00000001".into() })).unwrap();
        let Outcome::TopUp(top_up) = approved.outcome else { panic!() };
        assert_eq!(top_up.status, TopUpStatus::Completed);
        // Hot now holds the target: raising the minimum above it asks for a new top-up, once.
        let higher = CustodyPolicy { hot_min: 9_000, hot_target: 10_000, ..policy.clone() };
        desk.execute(&record(7, Command::PutCustodyPolicy(higher.clone()))).unwrap();
        desk.execute(&record(8, Command::PutCustodyPolicy(higher))).unwrap();
        assert_eq!(desk.top_ups().len(), 2);
        assert_eq!(desk.top_ups()[1].status, TopUpStatus::AwaitingApproval);
    }
}

fn admin_key(id: &str) -> Command {
    Command::CreateKey {
        owner: KeyOwner::Desk,
        key: NewKey {
            key_id: KeyId::parse(id).unwrap(),
            scopes: vec![Scope::Admin],
            algorithm: KeyAlgorithm::Hmac,
            credential: vec![7; 60],
            allowed_ips: Vec::new(),
        },
    }
}

#[test]
fn the_last_active_admin_key_cannot_be_revoked_before_or_after_a_restore() {
    let mut desk = initialized();
    desk.execute(&record(2, admin_key("k_second"))).unwrap();
    for desk in [&mut desk.clone(), &mut restored(&desk)] {
        let revoke = |id: &str| Command::RevokeKey { key_id: KeyId::parse(id).unwrap() };
        assert!(desk.execute(&record(3, revoke("k_second"))).unwrap().changed);
        let last = desk.execute(&record(4, revoke("k_admin")));
        assert!(matches!(last, Err(CommandError::Conflict { .. })), "{last:?}");
        desk.execute(&record(5, admin_key("k_third"))).unwrap();
        assert!(desk.execute(&record(6, revoke("k_admin"))).unwrap().changed);
    }
}
