//! Queued endpoints on PostgreSQL (`HOOKSERVER_INBOX=postgres://...`): a real server the
//! test starts (tests/common/postgres.rs), the drill bot as real processes.

mod common;

use common::bot::Bot;
use common::postgres::PgServer;

#[test]
fn smoke() {
    let Some(pg) = PgServer::start() else { return };
    let url = pg.database();
    let bot = Bot::start("queue_drill", &[("HOOKSERVER_INBOX", &url)]);
    let reply = common::post(
        &bot.url_of("/webhooks/record"),
        &common::hub_sample(),
        &[("webhook-id", "a")],
    );
    assert_eq!(reply.status, 202, "{}", reply.body);
    let again = common::post(
        &bot.url_of("/webhooks/record"),
        &common::hub_sample(),
        &[("webhook-id", "a")],
    );
    assert_eq!(again.status, 200, "{}", again.body);
    std::thread::sleep(std::time::Duration::from_millis(500));
    println!("{}", common::get(&format!("{}/api/inbox", bot.base())).body);
    println!(
        "{}",
        pg.sql(
            &url.rsplit('/').next().unwrap(),
            "select id, state, tries from hookserver_deliveries"
        )
    );
}
