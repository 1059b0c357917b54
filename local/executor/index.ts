/**
 * The local task executor: runs Batch task groups and Cloud Run job tasks as child processes.
 */
export { type ContainerRunnable, resolveContainer, UnmappedImageError } from './resolve-container.js';
export {
  type AttemptRunner,
  baseEnvironment,
  EXIT_NOT_RUNNABLE,
  runTaskGroup,
  type TaskGroupResult,
  type TaskGroupRun,
  type TaskSpec,
  type TaskState,
} from './run-task-group.js';
export {
  defaultTaskSlots,
  type SlotLease,
  TASK_MEMORY_BUDGET_BYTES,
  TaskSlots,
  type TaskSlotsSnapshot,
} from './task-slots.js';
