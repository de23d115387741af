/**
 * The HTTP API: one route per entry of the API handler's route table, all to the one Api
 * Lambda, with access logs and throttling. Every bearer-token route has the Lambda REQUEST
 * authorizer (functions/api/authorizer.ts) in front: a request without a good token never
 * reaches the Api function, and one with a good token carries its principal there. Its answers
 * are cached per Authorization header for {@link AUTHORIZER_CACHE_SECONDS}, so a revoked token
 * stops working within that time. The runner's routes (`auth: 'iam'`) are authorized by API
 * Gateway with IAM (SigV4), so only a principal whose IAM policy allows `execute-api:Invoke` on
 * that very path reaches them.
 */
import { CfnOutput, Duration, RemovalPolicy } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import * as apigw from 'aws-cdk-lib/aws-apigatewayv2';
import {
  HttpIamAuthorizer,
  HttpLambdaAuthorizer,
  HttpLambdaResponseType,
} from 'aws-cdk-lib/aws-apigatewayv2-authorizers';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { IFunction } from 'aws-cdk-lib/aws-lambda';
import * as logs from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import { AUTHORIZER_CACHE_SECONDS } from '#core/accounts.ts';

/** One HTTP route, in API Gateway path syntax (`/vms/{id}/backup`). */
export interface ApiRoute {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  path: string;
  /**
   * `iam`: API Gateway's IAM authorization; `none`: no authorization (the OpenAPI document, which
   * holds no data); otherwise the bearer-token Lambda authorizer.
   */
  auth?: 'iam' | 'none';
}

export interface HttpFrontProps {
  handler: IFunction;
  /** The bearer-token authorizer (functions/manifest.ts: `Authorizer`). */
  authorizer: IFunction;
  routes: readonly ApiRoute[];
  /** Steady-state requests per second of the whole API. */
  rateLimit?: number;
  burstLimit?: number;
}

/** The HTTP API and its `$default` stage. */
export class HttpFront extends Construct {
  readonly api: apigw.HttpApi;
  readonly stage: apigw.HttpStage;

  constructor(scope: Construct, id: string, props: HttpFrontProps) {
    super(scope, id);
    this.api = new apigw.HttpApi(this, 'HttpApi', {
      description: 'Lifeboat control plane API',
      createDefaultStage: false,
    });
    const accessLogs = new logs.LogGroup(this, 'AccessLogs', {
      retention: logs.RetentionDays.THREE_MONTHS,
      removalPolicy: RemovalPolicy.DESTROY,
    });
    this.stage = new apigw.HttpStage(this, 'DefaultStage', {
      httpApi: this.api,
      stageName: '$default',
      autoDeploy: true,
      throttle: { rateLimit: props.rateLimit ?? 50, burstLimit: props.burstLimit ?? 100 },
      accessLogSettings: {
        destination: new apigw.LogGroupLogDestination(accessLogs),
        // JSON lines; never the Authorization header or the body.
        format: AccessLogFormat.custom(
          JSON.stringify({
            requestId: '$context.requestId',
            time: '$context.requestTime',
            ip: '$context.identity.sourceIp',
            route: '$context.routeKey',
            status: '$context.status',
            latencyMs: '$context.responseLatency',
            bytes: '$context.responseLength',
            integrationError: '$context.integrationErrorMessage',
          }),
        ),
      },
    });
    // One permission for the whole API instead of one per route: keeps the function policy small.
    const integration = new HttpLambdaIntegration('Api', props.handler, { scopePermissionToRoute: false });
    const iam = new HttpIamAuthorizer();
    const none = new apigw.HttpNoneAuthorizer();
    const bearer = new HttpLambdaAuthorizer('BearerToken', props.authorizer, {
      authorizerName: 'bearer-token',
      identitySource: ['$request.header.Authorization'],
      responseTypes: [HttpLambdaResponseType.SIMPLE],
      resultsCacheTtl: Duration.seconds(AUTHORIZER_CACHE_SECONDS),
    });
    const seen = new Set<string>();
    for (const route of props.routes) {
      const key = `${route.method} ${route.path}`;
      if (seen.has(key)) throw new Error(`Route ${key} is listed twice`);
      seen.add(key);
      this.api.addRoutes({
        path: route.path,
        methods: [apigw.HttpMethod[route.method]],
        integration,
        authorizer: route.auth === 'iam' ? iam : route.auth === 'none' ? none : bearer,
      });
    }
    new CfnOutput(scope, 'ApiUrl', { value: this.stage.url, description: 'Lifeboat API endpoint' });
  }
}
