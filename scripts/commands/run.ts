import { attachToPlatform, CliError } from '../lib/context.js';

/** `batchwire run FLOW`: starts a flow now through onSchedule, as a manual run. */
export async function run(
  flow: string,
  options: { product: string; client?: string; param?: string[]; idempotencyKey?: string },
): Promise<void> {
  const env = attachToPlatform();
  const params: Record<string, string> = {};
  for (const pair of options.param ?? []) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new CliError(`--param takes key=value, got "${pair}"`);
    params[pair.slice(0, at)] = pair.slice(at + 1);
  }
  const body = {
    flow,
    product: options.product,
    ...(options.client ? { client: options.client } : {}),
    ...(Object.keys(params).length > 0 ? { params } : {}),
  };
  const response = await fetch(env.BATCHWIRE_ON_SCHEDULE_URL as string, {
    method: 'POST',
    headers: {
      'content-type': 'application/json',
      ...(options.idempotencyKey ? { 'idempotency-key': options.idempotencyKey } : {}),
    },
    body: JSON.stringify(body),
  });
  const text = await response.text();
  if (!response.ok) throw new CliError(`onSchedule answered ${response.status}: ${text}`);
  process.stdout.write(`${text}\n`);
}
