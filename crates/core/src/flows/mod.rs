//! Cloud flows: definitions in the Logic Apps / Power Automate shape (one trigger, actions with
//! `runAfter`), the expression language they use, and evaluating it during a run. Pure: the
//! server stores flows, registers triggers and runs actions.

pub mod action;
mod datetime;
pub mod definition;
pub mod error;
pub mod evaluate;
pub mod expression;
mod read;
pub mod references;
pub mod schedule;
mod strict_json;
pub mod trigger;
pub mod variables;

#[cfg(test)]
mod definition_tests;
#[cfg(test)]
mod evaluate_tests;
#[cfg(test)]
mod expression_tests;
#[cfg(test)]
mod proptests;

pub use action::{
    Action, ActionKind, Condition, DESKTOP_FLOW_API, DataverseAction, DataverseOperation,
    DesktopFlowRun, DesktopRunMode, DesktopRunPriority, Feature, HttpAction, HttpAuthentication,
    IfAction, RunDecision, RunStatus, Terminate, TerminateStatus,
};
pub use definition::{FlowDefinition, FlowParameter, FlowState, ParameterType, Scope};
pub use error::{DefinitionError, JsonPath};
pub use evaluate::{ActionRecord, EvaluationError, FlowContext, RecordedRun, evaluate, to_text};
pub use expression::{
    Expr, Expression, ExpressionError, Function, Reference, ReferenceKind, Segment, Template,
};
pub use schedule::{RecurrenceSchedule, ScheduleError};
pub use trigger::{
    DATAVERSE_API, DataverseTrigger, Frequency, Recurrence, RequestKind, RequestTrigger, RowChange,
    RunAs, Schedule, Trigger, TriggerKind, TriggerMessage, TriggerScope,
};
