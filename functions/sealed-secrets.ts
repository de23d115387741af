/**
 * Moved to platform/sealed-secrets.ts (shared with the runner). This re-export keeps the importers outside
 * functions/ (local/, bench/, test/ helpers) working until they import `#platform/sealed-secrets.ts`.
 * @deprecated import `#platform/sealed-secrets.ts`.
 */
export * from '#platform/sealed-secrets.ts';
