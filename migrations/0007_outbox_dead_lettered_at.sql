ALTER TABLE `outbox` ADD `dead_lettered_at` datetime(3);--> statement-breakpoint
CREATE INDEX `outbox_undelivered_idx` ON `outbox` (`delivered_at`,`dead_lettered_at`,`sent_at`);--> statement-breakpoint
-- the rows published and not delivered when this runs: dead-lettered by a worker before this
-- release (which marked nothing), purged from the dead-letter queue on purpose, or on their way.
-- Marked as if dead-lettered, so the lost-mail sweep never sends them again on its own: a mail an
-- operator chose not to send stays unsent (docs/operations.md, "Upgrading to the lost-mail sweep")
UPDATE `outbox` SET `dead_lettered_at` = `sent_at` WHERE `delivered_at` IS NULL AND `sent_at` IS NOT NULL;
