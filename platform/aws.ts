/**
 * The AWS SDK v3 clients every handler shares, created lazily once per Lambda container.
 * Endpoints are never configured here: local mode sets the SDK's own `AWS_ENDPOINT_URL_*`
 * variables, so the same code talks to DynamoDB Local, fauxqs and the Step Functions shim.
 */
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { LambdaClient } from '@aws-sdk/client-lambda';
import { SecretsManagerClient } from '@aws-sdk/client-secrets-manager';
import { SFNClient } from '@aws-sdk/client-sfn';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/** Region of every client: `AWS_REGION`, else us-east-1. */
export function region(): string {
  return process.env.AWS_REGION || 'us-east-1';
}

let ddb: DynamoDBDocumentClient | undefined;
let sqs: SQSClient | undefined;
let sfn: SFNClient | undefined;
let lambda: LambdaClient | undefined;
let secrets: SecretsManagerClient | undefined;

/** DynamoDB document client; undefined attributes are dropped so optional fields stay optional. */
export function dynamo(): DynamoDBDocumentClient {
  ddb ??= DynamoDBDocumentClient.from(new DynamoDBClient({ region: region() }), {
    marshallOptions: { removeUndefinedValues: true },
  });
  return ddb;
}

/** SQS client (host task queues). */
export function sqsClient(): SQSClient {
  sqs ??= new SQSClient({ region: region() });
  return sqs;
}

/** Step Functions client (StartExecution). */
export function sfnClient(): SFNClient {
  sfn ??= new SFNClient({ region: region() });
  return sfn;
}

/** Lambda client (waking the dispatcher). */
export function lambdaClient(): LambdaClient {
  lambda ??= new LambdaClient({ region: region() });
  return lambda;
}

/** Secrets Manager client (datastore secrets in AWS). */
export function secretsClient(): SecretsManagerClient {
  secrets ??= new SecretsManagerClient({ region: region() });
  return secrets;
}

/**
 * Forget every client, so the next call reads the environment again. Tests use it after
 * pointing `AWS_ENDPOINT_URL_*` at a freshly started emulator.
 */
export function resetClients(): void {
  ddb = sqs = sfn = lambda = secrets = undefined;
}
