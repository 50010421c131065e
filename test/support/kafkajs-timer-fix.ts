// Every test process gets the kafkajs request-queue timer fix that the product's processes get
// from src/kafka/client.ts (tests also make kafkajs clients of their own, for topics and
// readers): no idle 1 ms timer loop and no TimeoutNegativeWarning in the test output either.
import { fixKafkajsRequestQueueTimer } from '../../src/kafka/request-queue-timer.ts';

fixKafkajsRequestQueueTimer();
