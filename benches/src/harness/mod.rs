//! The parent side: `compare` runs every system's children, interleaved,
//! and turns their measurements into tables and charts.

pub mod child;
pub mod compare;
pub mod plot;
pub mod table;
