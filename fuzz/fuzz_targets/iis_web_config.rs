//! Fuzzes the IIS `web.config` editor (`web::iis::apply`, which reads a host's
//! file): the input is the document; it gets two fixed url-blocks of a mitigation.
//! It must never panic, and when it accepts, the result must be accepted again and
//! be unchanged by a second application (idempotent), and removing the rules again
//! must be accepted too.
#![no_main]

use airlock_applier::web::{Block, Cond, On, Reply, iis};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|doc: &[u8]| {
    let blocks = [
        Block {
            name: "path".into(),
            matches: vec![Cond {
                on: On::Path,
                pattern: "(?i)autodiscover\\.json.*@.*powershell".into(),
            }],
            response: Reply::Abort,
        },
        Block {
            name: "cookie".into(),
            matches: vec![
                Cond {
                    on: On::Header("Cookie".into()),
                    pattern: "X-BEResource=.+/.+~.+".into(),
                },
                Cond {
                    on: On::Query,
                    pattern: "\"<&>'".into(),
                },
            ],
            response: Reply::Status(403),
        },
    ];
    if let Ok(once) = iis::apply(doc, "AM-FUZZ-1", &blocks) {
        let twice = iis::apply(&once, "AM-FUZZ-1", &blocks).expect("its own output is accepted");
        assert_eq!(once, twice, "apply is idempotent");
        iis::apply(&once, "AM-FUZZ-1", &[]).expect("removal is accepted");
    }
});
