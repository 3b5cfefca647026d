//! The page heap's error type.

use std::fmt;

use crate::os::OsError;
use crate::sizeclass::SpanClass;

/// Why the page heap could not do what was asked. Bad requests and
/// exhaustion come back as errors; misuse of a span (freeing it twice, or
/// in the wrong state) is a bug in the caller and panics, printing the span.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ArenaError {
    /// A span of zero pages was requested.
    ZeroPages,
    /// More pages were requested than the heap could ever reserve
    /// (`max_pages` is the configured heap limit, at most the 47-bit
    /// address space, in pages).
    TooLarge {
        /// Pages requested.
        npages: usize,
        /// The most pages the heap may ever hold.
        max_pages: usize,
    },
    /// Growing the heap for the request would pass the configured limit.
    HeapLimit {
        /// Pages requested.
        npages: usize,
        /// Bytes the heap has reserved already.
        sys_bytes: usize,
        /// The configured limit in bytes.
        limit_bytes: usize,
    },
    /// A small span class with a page count other than its class's.
    ClassMismatch {
        /// The span class requested.
        span_class: SpanClass,
        /// Pages requested.
        npages: usize,
        /// Pages a span of that class has.
        class_npages: usize,
    },
    /// The OS refused memory (address space or a resource limit).
    Os(OsError),
    /// A [`crate::PageHeapConfig`] value is out of range.
    InvalidConfig(String),
    /// The background scavenger thread could not be started.
    Thread(String),
}

impl fmt::Display for ArenaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArenaError::ZeroPages => write!(f, "a span of zero pages was requested"),
            ArenaError::TooLarge { npages, max_pages } => write!(
                f,
                "{npages} pages requested but the heap can never hold more than {max_pages}"
            ),
            ArenaError::HeapLimit {
                npages,
                sys_bytes,
                limit_bytes,
            } => write!(
                f,
                "growing the heap for {npages} pages would pass its limit of {limit_bytes} bytes ({sys_bytes} reserved)"
            ),
            ArenaError::ClassMismatch {
                span_class,
                npages,
                class_npages,
            } => write!(
                f,
                "{span_class:?} spans have {class_npages} pages, not {npages}"
            ),
            ArenaError::Os(e) => write!(f, "the OS refused heap memory: {e}"),
            ArenaError::InvalidConfig(what) => write!(f, "invalid page heap configuration: {what}"),
            ArenaError::Thread(e) => write!(f, "could not start the background scavenger: {e}"),
        }
    }
}

impl std::error::Error for ArenaError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ArenaError::Os(e) => Some(e),
            _ => None,
        }
    }
}

impl From<OsError> for ArenaError {
    fn from(e: OsError) -> ArenaError {
        ArenaError::Os(e)
    }
}
