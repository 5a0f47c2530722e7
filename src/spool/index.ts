export { UNRECOGNISED_DATASET, type DeadLetter } from './dead-letter.js'
export { Spool, SpoolBatch, type Segment, type Checkpoint, type DamagedSegment, type CommitOutcome, type SpoolOptions } from './spool.js'
export { Forwarder } from './forwarder.js'
