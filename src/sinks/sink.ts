export type { DeliveryBatch, DeliveryResult, Progress, Rejection, Sink, StoppedState } from '../delivery.js'
export { DeliveryStopped } from '../delivery.js'
