import { mkdirSync, writeFileSync } from 'node:fs';
import { isAbsolute, join, relative, resolve, sep } from 'node:path';
import { configPath, loadConfig } from '#shared/config/load.js';
import { buildPlan, clientPlan } from '#shared/plan/build-plan.js';
import { CliError, ROOT_DIR } from '../lib/context.js';
import { renderGcloud } from '../plan/render-gcloud.js';
import { renderSummary } from '../plan/render-summary.js';
import { renderTerraform } from '../plan/render-terraform.js';

export const PLAN_FORMATS = ['summary', 'json', 'gcloud', 'terraform'] as const;
export type PlanFormat = (typeof PLAN_FORMATS)[number];

export interface PlanOptions {
  config?: string;
  format: PlanFormat;
  /** `PRODUCT/CLIENT`: only what onboarding that client creates. */
  client?: string;
  /** Terraform: the folder the `*.tf.json` files go to. */
  out?: string;
  /** Default: the repository root (the source the functions are deployed from). */
  rootDir?: string;
  write?: (text: string) => void;
}

/**
 * `batchwire plan`: what the config needs in Google Cloud, as a summary, JSON, a gcloud script
 * or Terraform JSON; `--client P/C` for what onboarding one client adds. The deployed functions
 * read the config file this is run with (`BATCHWIRE_CONFIG`, a path inside the repository), so
 * a deployable format refuses a config with a `local:` section.
 */
export function plan(options: PlanOptions): void {
  const write = options.write ?? ((text: string) => process.stdout.write(text));
  const rootDir = options.rootDir ?? ROOT_DIR;
  const env = options.config ? { ...process.env, BATCHWIRE_CONFIG: options.config } : process.env;
  const path = configPath(env);
  const config = loadConfig(env);
  const configFile = relative(rootDir, path).split(sep).join('/');
  const deployable = options.format === 'gcloud' || options.format === 'terraform';
  if (deployable && (configFile.startsWith('..') || isAbsolute(configFile))) {
    throw new CliError(
      `${path} is outside the repository: the deployed functions read their config from the uploaded sources; put it under deploy/`,
    );
  }
  if (deployable && Object.keys(config.local.images).length > 0) {
    throw new CliError(
      `${configFile} has a local: section, which belongs to the local cloud only: deploy a config of its own (e.g. deploy/prod.yaml, --config)`,
    );
  }

  const unassigned = Object.entries(config.products).filter(([, settings]) => !settings.serviceAccount);
  if (deployable && unassigned.length > 0) {
    const [product] = unassigned[0] as [string, unknown];
    throw new CliError(
      `${configFile}: products.${product}.serviceAccount is required to deploy: the product's Batch jobs run as it (e.g. bw-${product}-jobs@${config.project}.iam.gserviceaccount.com)`,
    );
  }

  let planned = buildPlan(config, { configFile });
  if (options.client) {
    const [product, client, extra] = options.client.split('/');
    const settings = product ? config.products[product] : undefined;
    if (!product || !client || extra !== undefined)
      throw new CliError(`--client ${options.client}: expected PRODUCT/CLIENT`);
    if (!settings) throw new CliError(`--client ${options.client}: no product ${product} in ${configFile}`);
    if (!settings.clients.includes(client)) {
      throw new CliError(
        `--client ${options.client}: ${client} is not among products.${product}.clients in ${configFile}; add it there first`,
      );
    }
    planned = clientPlan(planned, product, client);
  }

  switch (options.format) {
    case 'summary':
      write(renderSummary(planned));
      return;
    case 'json':
      write(`${JSON.stringify(planned, null, 2)}\n`);
      return;
    case 'gcloud':
      write(renderGcloud(planned, { configFile, ...(options.client ? { client: options.client } : {}) }));
      return;
    case 'terraform': {
      if (!options.out)
        throw new CliError('--format terraform needs --out DIR (the folder for the *.tf.json files)');
      const out = resolve(options.out);
      const sourceDir = relative(out, rootDir).split(sep).join('/') || '.';
      const [product, client] = options.client?.split('/') ?? [];
      const files = renderTerraform(planned, {
        sourceDir,
        ...(product && client ? { only: { product, client } } : {}),
      });
      mkdirSync(out, { recursive: true });
      for (const [name, content] of Object.entries(files)) {
        writeFileSync(join(out, name), `${JSON.stringify(content, null, 2)}\n`);
        write(`wrote ${join(relative(process.cwd(), out) || '.', name)}\n`);
      }
      return;
    }
  }
}
