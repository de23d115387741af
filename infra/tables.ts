/**
 * The DynamoDB tables, one per entry of TABLES (functions/tables.ts), so the Lambdas, local mode
 * and the CDK app agree on keys and indexes.
 */
import { RemovalPolicy } from 'aws-cdk-lib';
import * as dynamodb from 'aws-cdk-lib/aws-dynamodb';
import { Construct } from 'constructs';
import { TABLES, type TableSpec } from '#functions/tables.ts';

/** Tables by their TABLES key. */
export type LifeboatTables = Record<TableSpec['key'], dynamodb.Table>;

const attributeType = (type: 'S' | 'N'): dynamodb.AttributeType =>
  type === 'S' ? dynamodb.AttributeType.STRING : dynamodb.AttributeType.NUMBER;

/** Creates every table: on demand, point-in-time recovery, AWS-managed encryption, retained. */
export class Tables extends Construct {
  readonly byKey: LifeboatTables;

  constructor(scope: Construct, id: string) {
    super(scope, id);
    const byKey: Partial<LifeboatTables> = {};
    for (const spec of TABLES) {
      const table = new dynamodb.Table(this, pascal(spec.key), {
        partitionKey: { name: spec.partitionKey.name, type: attributeType(spec.partitionKey.type) },
        billingMode: dynamodb.BillingMode.PAY_PER_REQUEST,
        pointInTimeRecoverySpecification: { pointInTimeRecoveryEnabled: true },
        encryption: dynamodb.TableEncryption.AWS_MANAGED,
        ...(spec.ttlAttribute && { timeToLiveAttribute: spec.ttlAttribute }),
        // Backup metadata outlives a stack deletion: losing it orphans every backup.
        removalPolicy: RemovalPolicy.RETAIN,
      });
      for (const index of spec.indexes) {
        table.addGlobalSecondaryIndex({
          indexName: index.name,
          partitionKey: { name: index.partitionKey.name, type: attributeType(index.partitionKey.type) },
          ...(index.sortKey && {
            sortKey: { name: index.sortKey.name, type: attributeType(index.sortKey.type) },
          }),
          projectionType: dynamodb.ProjectionType.ALL,
        });
      }
      byKey[spec.key] = table;
    }
    this.byKey = byKey as LifeboatTables;
  }

  /** TABLE_* environment variables: each table's generated name. */
  environment(): Record<string, string> {
    return Object.fromEntries(TABLES.map((spec) => [spec.envVar, this.byKey[spec.key].tableName]));
  }
}

function pascal(key: string): string {
  return key.charAt(0).toUpperCase() + key.slice(1);
}
