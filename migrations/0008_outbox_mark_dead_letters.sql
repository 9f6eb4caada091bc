-- Custom SQL migration file, put your code below! --
-- The rows published and not delivered when this runs: dead-lettered by a worker of a release
-- before the lost-mail sweep (which marked nothing), purged from the dead-letter queue on
-- purpose, or on their way. Marked as if dead-lettered, so the sweep never sends them again on
-- its own: a mail an operator chose not to send stays unsent (docs/operations.md, "Upgrading to
-- the lost-mail sweep"). A migration of its own, not part of 0007: a database that had applied
-- 0007 already would never run it (drizzle runs a migration newer than the last applied only).
-- A range of outbox_undelivered_idx, normally a few rows (the dead letters kept).
UPDATE `outbox` SET `dead_lettered_at` = `sent_at` WHERE `delivered_at` IS NULL AND `sent_at` IS NOT NULL AND `dead_lettered_at` IS NULL;
