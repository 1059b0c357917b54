import type { ExecutionsClient } from '@google-cloud/workflows';
import type { FlowExecutions } from '../domain/flow-start.js';
import { TransientError } from '../runtime/errors.js';
import { type GrpcClientOptions, grpcClientOptions } from './endpoints.js';
import { fromGrpcError } from './grpc-errors.js';
import { lazyClient } from './lazy-client.js';

/**
 * Either a ready client or options to build one, never both. With neither, the client is built
 * from `grpcClientOptions('workflows', env)`: `WORKFLOWS_EMULATOR_HOST` when set, else Google Cloud.
 */
export type WorkflowsAdapterOptions =
  | { client: ExecutionsClient; clientOptions?: never; env?: never }
  | { client?: never; clientOptions?: GrpcClientOptions; env?: NodeJS.ProcessEnv };

/** The {@link FlowExecutions} port plus the adapter's own lifecycle. */
export interface WorkflowsExecutionsAdapter extends FlowExecutions {
  /** Closes the gRPC channel (if the adapter built the client). */
  close(): Promise<void>;
}

/**
 * Cloud Workflows executions over `@google-cloud/workflows`' ExecutionsClient, loaded on first
 * use (cold start). Errors are the platform's (see {@link fromGrpcError}).
 *
 * @example
 * const executions = createWorkflowsExecutions();
 * const name = await executions.start(workflow, JSON.stringify(argument), labels);
 */
export function createWorkflowsExecutions(options: WorkflowsAdapterOptions = {}): WorkflowsExecutionsAdapter {
  const client = lazyClient(async () => {
    const { ExecutionsClient } = await import('@google-cloud/workflows');
    const config = options.clientOptions ?? (await grpcClientOptions('workflows', options.env));
    return new ExecutionsClient(config as ConstructorParameters<typeof ExecutionsClient>[0]);
  }, options.client);

  return {
    async start(workflow, argument, labels) {
      try {
        const executions = await client.get();
        const [execution] = await executions.createExecution({
          parent: workflow,
          execution: { argument, labels },
        });
        if (!execution.name)
          throw new TransientError(`CreateExecution of ${workflow} returned no execution name`);
        return execution.name;
      } catch (error) {
        throw fromGrpcError(error, `cannot start an execution of ${workflow}`, {
          permission: 'workflows.executions.create',
        });
      }
    },

    async findByLabel(workflow, key, value) {
      try {
        const executions = await client.get();
        const [found] = await executions.listExecutions(
          { parent: workflow, filter: `labels.${key}="${value}"`, pageSize: 10 },
          { autoPaginate: false },
        );
        return found.map((execution) => execution.name ?? '').filter(Boolean);
      } catch (error) {
        throw fromGrpcError(error, `cannot list the executions of ${workflow}`, {
          permission: 'workflows.executions.list',
        });
      }
    },

    close: () => client.close(),
  };
}
