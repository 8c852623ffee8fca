/**
 * The function code the stack deploys, and the floe project inside it.
 *
 * Layout (scripts/deploy.sh assembles it; the tests make a throwaway one):
 *
 *   <assetDir>/<binary>/bootstrap      the cargo-lambda artifact (provided.al2023, arm64)
 *   <assetDir>/<binary>/project/       the user's floe project: floe.yaml, tables/, models/, ...
 *
 * One folder per function becomes that function's code asset, so the project is at
 * /var/task/project in Lambda (FLOE_PROJECT_DIR). The sources, and so the Glue databases and
 * the permissions, come from the project's tables/*.yaml `source:` keys.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

/** Thrown when the assets or the project are missing or unreadable; the message says what to run. */
export class AssetError extends Error {}

const HINT = 'run scripts/deploy.sh (it builds and assembles them), or pass -c assetDir=DIR';

/** A source name as floe accepts it (floe-core `check_identifier`). */
const SOURCE_NAME = /^[a-z][a-z0-9_]{0,254}$/;

/** The sources declared by the project at `projectDir` (tables/*.yaml or *.yml), sorted, each once. */
export function readSources(projectDir: string): string[] {
  const tablesDir = path.join(projectDir, 'tables');
  if (!fs.existsSync(path.join(projectDir, 'floe.yaml'))) {
    throw new AssetError(`${projectDir} is not a floe project (no floe.yaml): ${HINT}`);
  }
  const files = fs.existsSync(tablesDir)
    ? fs.readdirSync(tablesDir).filter((f) => /\.ya?ml$/.test(f)).sort()
    : [];
  if (files.length === 0) {
    throw new AssetError(`${tablesDir} has no *.yaml: the project declares no table, so there is nothing to deploy for`);
  }
  const sources = new Set<string>();
  for (const file of files) {
    const shown = path.join(tablesDir, file);
    let doc: unknown;
    try {
      doc = parse(fs.readFileSync(shown, 'utf8'));
    } catch (e) {
      throw new AssetError(`${shown}: not valid YAML (${(e as Error).message}); check it with floe validate`);
    }
    const source = (doc as { source?: unknown } | null)?.source;
    if (typeof source !== 'string' || !SOURCE_NAME.test(source)) {
      throw new AssetError(
        `${shown}: 'source' must be a name of lowercase letters, digits and underscores, got ${JSON.stringify(source)}`,
      );
    }
    sources.add(source);
  }
  return [...sources].sort();
}

/** floe.yaml's `concurrency` when absent (floe-config's default). */
export const DEFAULT_PROJECT_CONCURRENCY = 4;

/** The project's `concurrency` (floe.yaml): SQL statements the modelling stage runs at once. */
export function readProjectConcurrency(projectDir: string): number {
  const file = path.join(projectDir, 'floe.yaml');
  let doc: unknown;
  try {
    doc = parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    throw new AssetError(`${file}: not readable YAML (${(e as Error).message}); check it with floe validate`);
  }
  const value = (doc as { concurrency?: unknown } | null)?.concurrency;
  if (value === undefined || value === null) return DEFAULT_PROJECT_CONCURRENCY;
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1) {
    throw new AssetError(`${file}: 'concurrency' must be a positive integer, got ${JSON.stringify(value)}`);
  }
  return value;
}

/** The checked assets: each binary's code folder, and what the project says. */
export interface FunctionAssets {
  /** Code folder by binary name. */
  readonly codeDirs: ReadonlyMap<string, string>;
  /** The sources the project declares. */
  readonly sources: readonly string[];
  /** floe.yaml's `concurrency`. */
  readonly projectConcurrency: number;
}

/**
 * Checks that every binary has `bootstrap` and `project/` under `assetDir`, and that the
 * functions all carry the same sources.
 */
export function loadAssets(assetDir: string, binaries: readonly string[]): FunctionAssets {
  const codeDirs = new Map<string, string>();
  let sources: string[] | undefined;
  let first = '';
  for (const binary of binaries) {
    const dir = path.join(assetDir, binary);
    if (!fs.existsSync(path.join(dir, 'bootstrap'))) {
      throw new AssetError(`no ${path.join(dir, 'bootstrap')}: the Lambda artifacts are not assembled; ${HINT}`);
    }
    const own = readSources(path.join(dir, 'project'));
    if (sources === undefined) {
      sources = own;
      first = binary;
    } else if (own.join(',') !== sources.join(',')) {
      throw new AssetError(
        `${binary} carries a project with sources [${own.join(', ')}] but ${first} has [${sources.join(', ')}]: ` +
          `every function must ship the same project; ${HINT}`,
      );
    }
    codeDirs.set(binary, dir);
  }
  const projectConcurrency = readProjectConcurrency(path.join(assetDir, binaries[0], 'project'));
  return { codeDirs, sources: sources ?? [], projectConcurrency };
}
