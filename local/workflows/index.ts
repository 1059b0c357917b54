/**
 * The local Workflows interpreter: parse, validate and execute Cloud Workflows definitions.
 * The gRPC Executions service (server.ts) and `batchwire validate` use it through this module.
 */
export { CONNECTOR_APIS, isKnownCallTarget, OTHER_CALL_TARGETS } from './catalogue.js';
export { createLocalConnectors, LOCAL_CONNECTOR_NAMES, type LocalConnectorOptions } from './connectors.js';
export {
  WorkflowCancelledError,
  WorkflowException,
  WorkflowRuntimeError,
  type WorkflowStackFrame,
  WorkflowSyntaxError,
} from './errors.js';
export { executeWorkflow, systemClock } from './execute.js';
export { parseWorkflow } from './parse.js';
export type {
  Clock,
  Connector,
  ConnectorRegistry,
  WorkflowDiagnostic,
  WorkflowProgram,
  WorkflowRuntime,
} from './types.js';
export { type ValidateOptions, validateWorkflow, validateWorkflowFile } from './validate.js';
