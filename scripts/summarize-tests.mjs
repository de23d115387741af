// Prints vitest's JSON report as one plain closing line: "N passed, N failed[, N skipped]".
import { readFileSync } from 'node:fs';

const report = JSON.parse(readFileSync(process.argv[2], 'utf8'));
const skipped = report.numPendingTests + report.numTodoTests;
const failed =
  report.numFailedTests + (report.numFailedTestSuites > 0 && report.numFailedTests === 0 ? 1 : 0);
console.log(`${report.numPassedTests} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ''}`);
if (report.numTotalTests === 0) {
  console.error('no test ran');
  process.exit(1);
}
