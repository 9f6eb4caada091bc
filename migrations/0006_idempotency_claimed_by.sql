-- The process that claimed an idempotency key (`<instance id> <its start time>`): a repeat that finds
-- no answer stored yet answers at once that it was lost when that process no longer runs, instead
-- of "in progress" for 10 s. NULL on rows from before; MariaDB and MySQL add it without a rebuild.
ALTER TABLE `idempotency_keys` ADD `claimed_by` varchar(200);