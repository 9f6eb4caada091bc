ALTER TABLE `outbox` ADD `dead_lettered_at` datetime(3);--> statement-breakpoint
CREATE INDEX `outbox_undelivered_idx` ON `outbox` (`delivered_at`,`dead_lettered_at`,`sent_at`);