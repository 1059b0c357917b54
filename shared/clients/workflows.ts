import type { ExecutionsClient } from '@google-cloud/workflows';
import type { FlowExecutions } from '../domain/flow-start.js';
import { TransientError } from '../runtime/errors.js';
import { type GrpcClientOptions, grpcClientOptions } from './endpoints.js';
import { fromGrpcError } from './grpc-errors.js';

export type WorkflowsAdapterOptions =
  | { client: ExecutionsClient; clientConfig?: never; env?: never }
  | { client?: never; clientConfig?: GrpcClientOptions; env?: NodeJS.ProcessEnv };

/**
 * Cloud Workflows executions over `@google-cloud/workflows`' ExecutionsClient. The client is
 * loaded and created on first use (cold start), at `WORKFLOWS_EMULATOR_HOST` when it is set.
 */
export class WorkflowsExecutionsAdapter implements FlowExecutions {
  #client: Promise<ExecutionsClient> | undefined;

  constructor(private readonly options: WorkflowsAdapterOptions = {}) {
    if (options.client) this.#client = Promise.resolve(options.client);
  }

  private client(): Promise<ExecutionsClient> {
    this.#client ??= (async () => {
      const { ExecutionsClient } = await import('@google-cloud/workflows');
      const config = this.options.clientConfig ?? (await grpcClientOptions('workflows', this.options.env));
      return new ExecutionsClient(config as ConstructorParameters<typeof ExecutionsClient>[0]);
    })().catch((error: unknown) => {
      // Not cached: one failed load (a transient import or config error) must not break the instance for good.
      this.#client = undefined;
      throw error;
    });
    return this.#client;
  }

  async start(workflow: string, argument: string, labels: Record<string, string>): Promise<string> {
    try {
      const client = await this.client();
      const [execution] = await client.createExecution({ parent: workflow, execution: { argument, labels } });
      if (!execution.name)
        throw new TransientError(`CreateExecution of ${workflow} returned no execution name`);
      return execution.name;
    } catch (error) {
      throw fromGrpcError(error, `cannot start an execution of ${workflow}`, {
        permission: 'workflows.executions.create',
      });
    }
  }

  async findByLabel(workflow: string, key: string, value: string): Promise<string[]> {
    try {
      const client = await this.client();
      const [executions] = await client.listExecutions(
        { parent: workflow, filter: `labels.${key}="${value}"`, pageSize: 10 },
        { autoPaginate: false },
      );
      return executions.map((execution) => execution.name ?? '').filter(Boolean);
    } catch (error) {
      throw fromGrpcError(error, `cannot list the executions of ${workflow}`, {
        permission: 'workflows.executions.list',
      });
    }
  }

  async close(): Promise<void> {
    const built = await this.#client?.catch(() => undefined);
    this.#client = undefined;
    await built?.close();
  }
}
