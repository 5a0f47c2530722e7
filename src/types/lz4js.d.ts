// lz4js ships no types; what the Kafka codecs use.
declare module 'lz4js' {
  export function compressBound (n: number): number
  export function compressBlock (src: Uint8Array, dst: Uint8Array, sIndex: number, sLength: number, hashTable: Uint32Array): number
  export function decompress (src: Uint8Array, maxSize?: number): Uint8Array
  const lz4: { compressBound: typeof compressBound, compressBlock: typeof compressBlock, decompress: typeof decompress }
  export default lz4
}
declare module 'lz4js/xxh32.js' {
  export function hash (seed: number, src: Uint8Array, index: number, length: number): number
  const xxh32: { hash: typeof hash }
  export default xxh32
}
