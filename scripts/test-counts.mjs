// Reads a vitest JSON report and prints "N passed, N failed, N skipped", then one line per failed
// test (file › test name: first line of its message), so a red CI run says what failed at its end,
// and one line per test that failed and then passed on its retry (CI retries once), so a flaky test
// is reported even when the run is green.
import { readFileSync } from 'node:fs';
import { relative } from 'node:path';

let report;
try {
  report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
} catch {
  console.log('0 passed, 1 failed (no test report)');
  process.exit(0);
}
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
// A file that failed outside any test (an import error, a hook) counts as one failure: its tests
// never ran, and vitest's own count leaves it out.
const brokenFiles = (report.testResults ?? []).filter(
  (file) =>
    file.status === 'failed' && !(file.assertionResults ?? []).some((t) => t.status === 'failed'),
).length;
const failed = report.numFailedTests + brokenFiles;
console.log(`${report.numPassedTests} passed, ${failed} failed, ${skipped} skipped`);
for (const file of report.testResults ?? []) {
  const name = relative(process.cwd(), file.name ?? '');
  const failedTests = (file.assertionResults ?? []).filter((t) => t.status === 'failed');
  if (failedTests.length === 0 && file.status === 'failed') {
    console.log(`  ✗ ${name}: ${firstLine(file.message)}`);
  }
  for (const t of failedTests) {
    console.log(`  ✗ ${name} › ${t.fullName ?? t.title}: ${firstLine(t.failureMessages?.[0])}`);
  }
  // A passed test keeps the errors of the attempts that failed before it.
  for (const t of file.assertionResults ?? []) {
    if (t.status !== 'passed' || !t.failureMessages?.length) continue;
    console.log(
      `  ~ flaky (passed on retry) ${name} › ${t.fullName ?? t.title}: ${firstLine(t.failureMessages[0])}`,
    );
  }
}

function firstLine(text) {
  return String(text ?? '')
    .split('\n')[0]
    .slice(0, 300);
}
