// HOLE (compiles today): a `HashMap` hasher `S` need not be `Send`, yet the
// sweeper drops the map (and its hasher) on its own thread. Here an `Rc` is
// dropped off its thread while the mutator's thread still uses clones.
// Fix: bound `S: 'static + Send` in the `HashMap`/`HashSet` `Trace` impls.
use spangc::Trace;
use std::collections::HashMap;
use std::hash::{BuildHasher, DefaultHasher};
use std::rc::Rc;

#[derive(Clone)]
struct CountingHasher(Rc<u64>);

impl BuildHasher for CountingHasher {
    type Hasher = DefaultHasher;
    fn build_hasher(&self) -> DefaultHasher {
        DefaultHasher::new()
    }
}

#[derive(Trace)]
struct Table {
    map: HashMap<u64, u64, CountingHasher>,
}

fn main() {}
