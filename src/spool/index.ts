export { Staging, StagedBatch, type SealedBatch, type DeadLetter } from './batch.js'
