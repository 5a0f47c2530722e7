export type { DeliveryBatch, DeliveryResult, Progress, Rejection, Sink } from '../delivery.js'
