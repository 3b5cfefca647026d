// Unions cannot be traced: the collector cannot know which field is live.
use spangc::Trace;

#[derive(Trace)]
union Bits {
    int: u64,
    float: f64,
}

fn main() {}
