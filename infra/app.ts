/**
 * The CDK app entry (`cdk.json`): builds the web console into web/ when its sources changed
 * (the build `npm start` runs too), then the Lifeboat stack, and writes the cloud assembly.
 */
import { buildConsole } from '../scripts/build-console.ts';
import { buildApp } from './build-app.ts';

const { built, ms } = await buildConsole();
if (built) process.stderr.write(`console: built web/ in ${(ms / 1000).toFixed(1)} s\n`);
buildApp().app.synth();
