//! What the service runs on rather than what it does: the database pool and
//! migrations (`db`), the listener's slow-client defences (`listener`), the
//! metrics (`metrics`) and logs and traces (`telemetry`).

pub mod db;
pub mod listener;
pub mod metrics;
pub mod telemetry;
