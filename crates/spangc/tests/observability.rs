//! What a collection reports: a `gc` span per cycle with the cycle number,
//! heap sizes, pause and the pages the previous generation's sweep went
//! through, a "gc cycle done" event with the details, and `Heap::stats`
//! agreeing with them.

use spangc::{Config, Heap};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id, Record};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, SubscriberExt};

/// Field name to value, as `u64` where it is a number.
type Fields = HashMap<String, u64>;

#[derive(Default)]
struct Seen {
    /// `gc` spans by id, with every field recorded on them.
    spans: Vec<(Id, Fields)>,
    /// Events by message.
    events: Vec<(String, Fields)>,
}

#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Seen>>);

struct Collect<'a>(&'a mut Fields, Option<&'a mut String>);

impl Visit for Collect<'_> {
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_owned(), value);
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_owned(), value as u64);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message"
            && let Some(m) = self.1.as_deref_mut()
        {
            *m = format!("{value:?}");
        }
    }
}

impl<S: Subscriber> Layer<S> for Recorder {
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, _: Context<'_, S>) {
        if attrs.metadata().name() == "gc" && attrs.metadata().target() == "spangc" {
            let mut fields = Fields::new();
            attrs.record(&mut Collect(&mut fields, None));
            self.0.lock().unwrap().spans.push((id.clone(), fields));
        }
    }
    fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
        let mut seen = self.0.lock().unwrap();
        if let Some((_, fields)) = seen.spans.iter_mut().find(|(i, _)| i == id) {
            values.record(&mut Collect(fields, None));
        }
    }
    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        if event.metadata().target() == "spangc" {
            let (mut fields, mut message) = (Fields::new(), String::new());
            event.record(&mut Collect(&mut fields, Some(&mut message)));
            self.0.lock().unwrap().events.push((message, fields));
        }
    }
}

#[test]
fn collections_emit_spans_events_and_stats() {
    spangc::brand!(Observed);
    let recorder = Recorder::default();
    let subscriber = tracing_subscriber::registry().with(recorder.clone());
    let heap = Heap::<Observed>::new(Config::builder().gc_percent(None).build().unwrap()).unwrap();
    tracing::subscriber::with_default(subscriber, || {
        let mut m = heap.mutator();
        m.enter(|cx| {
            // About 1.6 MB of garbage, then two collections: the second
            // reports the pages the first one's sweep went through.
            for i in 0..100_000u64 {
                cx.alloc(i);
                cx.alloc([i; 1]);
            }
            cx.collect();
            cx.collect();
        });
    });

    let seen = recorder.0.lock().unwrap();
    assert_eq!(seen.spans.len(), 2, "one gc span per cycle");
    for (n, (_, f)) in seen.spans.iter().enumerate() {
        for field in [
            "cycle",
            "heap_live_before",
            "heap_live_after",
            "heap_goal",
            "pause_ns",
            "mark_ns",
            "mark_threads",
            "pages_swept",
        ] {
            assert!(f.contains_key(field), "cycle {n}: no {field} in {f:?}");
        }
        assert_eq!(f["cycle"], n as u64 + 1, "cycles count from 1, as gc_count");
        assert!(f["pause_ns"] > 0);
    }
    let first = &seen.spans[0].1;
    assert!(first["heap_live_before"] >= 1_600_000, "{first:?}");
    assert_eq!(first["heap_live_after"], 0, "nothing is rooted");
    let second = &seen.spans[1].1;
    assert!(
        second["pages_swept"] >= 1_600_000 / 8192,
        "the first cycle's sweep went through the garbage's pages: {second:?}"
    );

    let done: Vec<&Fields> = seen
        .events
        .iter()
        .filter(|(m, _)| m == "gc cycle done")
        .map(|(_, f)| f)
        .collect();
    assert_eq!(done.len(), 2);
    assert_eq!(done[1]["prev_objects_freed"], 200_000);
    assert_eq!(done[1]["prev_pages_swept"], second["pages_swept"]);

    let stats = heap.stats();
    assert_eq!(stats.gc_count, 2);
    assert_eq!(stats.pause_last_ns, second["pause_ns"]);
    assert_eq!(stats.pause_total_ns, first["pause_ns"] + second["pause_ns"]);
    assert!(stats.pages_swept_total >= second["pages_swept"]);
    assert_eq!(stats.objects_freed_total, 200_000);
}
