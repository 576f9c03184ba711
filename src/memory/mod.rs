//! GPU memory: live readings from NVML now; the planner that decides placement joins it (see
//! `../shared/design.md`).

pub mod monitor;
