//! GPU and host memory: the planner that decides placement before anything loads
//! (`planner`, with the model sizes in `footprint` and the speed model in `speed`), the plan it
//! returns (`plan`), what the machine has (`machine`), and live readings from NVML (`monitor`).

pub mod footprint;
pub mod machine;
pub mod monitor;
pub mod plan;
pub mod planner;
pub mod request;
pub mod speed;

pub use footprint::{ModelConfigs, ModelFootprint};
pub use plan::{MemoryPlan, Placement};
pub use planner::{Capabilities, GpuCapacity, PlanRequest, Target, plan};
pub use request::{Hardware, plan_request};
pub use speed::SpeedFigures;
