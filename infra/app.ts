/** The CDK app entry (`cdk.json`): builds the Lifeboat stack and writes the cloud assembly. */
import { buildApp } from './build-app.ts';

buildApp().app.synth();
