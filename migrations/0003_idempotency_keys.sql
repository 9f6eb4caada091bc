CREATE TABLE `idempotency_keys` (
	`tenant_id` varchar(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`idem_key` varchar(255) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`fingerprint` varchar(64) NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`response` mediumtext,
	CONSTRAINT `idempotency_keys_pk` PRIMARY KEY(`tenant_id`,`idem_key`)
);
--> statement-breakpoint
CREATE INDEX `idempotency_keys_tenant_created_idx` ON `idempotency_keys` (`tenant_id`,`created_at`);