// `Scope` is `!Sync`.
use spangc::Scope;

fn assert_sync<T: Sync>() {}

fn main() {
    assert_sync::<Scope>();
}
