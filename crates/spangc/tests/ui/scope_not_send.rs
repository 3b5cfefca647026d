// `Scope` is `!Send`.
use spangc::Scope;

fn assert_send<T: Send>() {}

fn main() {
    assert_send::<Scope>();
}
