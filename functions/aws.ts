/**
 * Moved to platform/aws.ts (shared with the runner). This re-export keeps the importers outside
 * functions/ (local/, bench/, test/ helpers) working until they import `#platform/aws.ts`.
 * @deprecated import `#platform/aws.ts`.
 */
export * from '#platform/aws.ts';
