/**
 * metadata.product for every event Palisade emits. The version is read once
 * from package.json so events name the release that produced them.
 */
import { readFileSync } from 'node:fs';
import type { OcsfProduct } from './types.ts';

export const PRODUCT_NAME = 'Palisade';
export const VENDOR_NAME = 'Palisade';

const packageVersion = (JSON.parse(readFileSync(new URL('../../../package.json', import.meta.url), 'utf8')) as { version: string }).version;

export type PalisadeFeature = 'sidecar' | 'detector';

const products: Record<PalisadeFeature, OcsfProduct> = {
  sidecar: Object.freeze({ name: PRODUCT_NAME, vendor_name: VENDOR_NAME, version: packageVersion, feature: Object.freeze({ name: 'sidecar' }) }),
  detector: Object.freeze({ name: PRODUCT_NAME, vendor_name: VENDOR_NAME, version: packageVersion, feature: Object.freeze({ name: 'detector' }) }),
};

/** The product object; shared and frozen (it is the same for every event of a process). */
export function productOf(feature: PalisadeFeature): OcsfProduct {
  return products[feature];
}

export function palisadeVersion(): string {
  return packageVersion;
}
