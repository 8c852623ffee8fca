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
 * the permissions, come from the project's tables/*.yaml `source:` keys; the landing function's
 * memory from their largest `max_file_mb`.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { parse } from 'yaml';

/** Thrown when the assets or the project are missing or unreadable; the message says what to run. */
export class AssetError extends Error {}

const HINT = 'run scripts/deploy.sh (it builds and assembles them), or pass -c assetDir=DIR';

/** A source name as floe accepts it (floe-core `check_identifier`). */
const SOURCE_NAME = /^[a-z][a-z0-9_]{0,254}$/;

/** Each tables/*.yaml (or *.yml) of the project at `projectDir`, parsed, in file-name order. */
function readTableFiles(projectDir: string): { file: string; doc: unknown }[] {
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
  return files.map((name) => {
    const file = path.join(tablesDir, name);
    try {
      return { file, doc: parse(fs.readFileSync(file, 'utf8')) };
    } catch (e) {
      throw new AssetError(`${file}: not valid YAML (${(e as Error).message}); check it with floe validate`);
    }
  });
}

/** The sources declared by the project at `projectDir` (tables/*.yaml or *.yml), sorted, each once. */
export function readSources(projectDir: string): string[] {
  const sources = new Set<string>();
  for (const { file, doc } of readTableFiles(projectDir)) {
    const source = (doc as { source?: unknown } | null)?.source;
    if (typeof source !== 'string' || !SOURCE_NAME.test(source)) {
      throw new AssetError(
        `${file}: 'source' must be a name of lowercase letters, digits and underscores, got ${JSON.stringify(source)}`,
      );
    }
    sources.add(source);
  }
  return [...sources].sort();
}

/** A table's `max_file_mb` when absent (floe-config's default). */
export const DEFAULT_MAX_FILE_MB = 1024;

/** The largest file the project accepts, and the table that accepts it. */
export interface LargestFile {
  /** The largest `max_file_mb` of any table (the default for a table that sets none). */
  readonly maxFileMb: number;
  /** `source.table` of that table (the first one, in file and table order). */
  readonly table: string;
  /** The file declaring it. */
  readonly file: string;
}

/**
 * The largest `max_file_mb` of the project's tables: the landing function holds a whole landed
 * file in memory, so this sizes it (sizing.ts).
 */
export function readLargestFile(projectDir: string): LargestFile {
  let largest: LargestFile | undefined;
  for (const { file, doc } of readTableFiles(projectDir)) {
    const source = String((doc as { source?: unknown } | null)?.source);
    const tables = (doc as { tables?: unknown } | null)?.tables;
    if (tables === null || typeof tables !== 'object' || Array.isArray(tables)) continue;
    for (const [name, table] of Object.entries(tables as Record<string, unknown>)) {
      const raw = (table as { max_file_mb?: unknown } | null)?.max_file_mb;
      if (raw !== undefined && raw !== null && (typeof raw !== 'number' || !Number.isInteger(raw) || raw < 1)) {
        throw new AssetError(`${file}: table ${name}: 'max_file_mb' must be a positive integer (MiB), got ${JSON.stringify(raw)}`);
      }
      const maxFileMb = typeof raw === 'number' ? raw : DEFAULT_MAX_FILE_MB;
      if (largest === undefined || maxFileMb > largest.maxFileMb) {
        largest = { maxFileMb, table: `${source}.${name}`, file };
      }
    }
  }
  return largest ?? { maxFileMb: DEFAULT_MAX_FILE_MB, table: '(no table declared)', file: path.join(projectDir, 'tables') };
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
  /** The largest `max_file_mb` of the project's tables. */
  readonly largestFile: LargestFile;
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
  const project = path.join(assetDir, binaries[0], 'project');
  return {
    codeDirs,
    sources: sources ?? [],
    projectConcurrency: readProjectConcurrency(project),
    largestFile: readLargestFile(project),
  };
}
