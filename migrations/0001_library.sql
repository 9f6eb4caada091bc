CREATE TABLE `books` (
	`tenant_id` varchar(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`id` char(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`isbn` varchar(17) NOT NULL,
	`title` varchar(300) NOT NULL,
	`author` varchar(200) NOT NULL,
	`copies` int NOT NULL,
	`available` int NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `books_pk` PRIMARY KEY(`tenant_id`,`id`),
	CONSTRAINT `books_available_range` CHECK(`books`.`available` >= 0 and `books`.`available` <= `books`.`copies`)
);
--> statement-breakpoint
CREATE TABLE `loans` (
	`tenant_id` varchar(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`id` char(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`book_id` char(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`member_id` char(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`borrowed_at` datetime(3) NOT NULL,
	`returned_at` datetime(3),
	CONSTRAINT `loans_pk` PRIMARY KEY(`tenant_id`,`id`)
);
--> statement-breakpoint
CREATE TABLE `members` (
	`tenant_id` varchar(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`id` char(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`email` varchar(254) NOT NULL,
	`name` varchar(200) NOT NULL,
	`password_hash` varchar(255) NOT NULL,
	`role` enum('librarian','member') NOT NULL,
	`password_version` int NOT NULL DEFAULT 1,
	`created_at` datetime(3) NOT NULL,
	`updated_at` datetime(3) NOT NULL,
	CONSTRAINT `members_pk` PRIMARY KEY(`tenant_id`,`id`),
	CONSTRAINT `members_tenant_email_uq` UNIQUE(`tenant_id`,`email`)
);
--> statement-breakpoint
CREATE TABLE `outbox` (
	`id` char(26) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`tenant_id` varchar(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`kind` varchar(40) NOT NULL,
	`recipient` varchar(254) NOT NULL,
	`payload` json NOT NULL,
	`created_at` datetime(3) NOT NULL,
	`available_at` datetime(3) NOT NULL,
	`attempts` int NOT NULL DEFAULT 0,
	`sent_at` datetime(3),
	`last_error` varchar(500),
	CONSTRAINT `outbox_id` PRIMARY KEY(`id`)
);
--> statement-breakpoint
CREATE TABLE `tenant_state` (
	`tenant_id` varchar(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`members_registered` int NOT NULL DEFAULT 0,
	`created_at` datetime(3) NOT NULL,
	CONSTRAINT `tenant_state_tenant_id` PRIMARY KEY(`tenant_id`)
);
--> statement-breakpoint
CREATE INDEX `books_tenant_author_id_idx` ON `books` (`tenant_id`,`author`,`id`);--> statement-breakpoint
CREATE INDEX `loans_tenant_member_id_idx` ON `loans` (`tenant_id`,`member_id`,`id`);--> statement-breakpoint
CREATE INDEX `loans_tenant_book_returned_idx` ON `loans` (`tenant_id`,`book_id`,`returned_at`);--> statement-breakpoint
CREATE INDEX `outbox_pending_idx` ON `outbox` (`sent_at`,`available_at`,`id`);--> statement-breakpoint
CREATE INDEX `outbox_tenant_created_idx` ON `outbox` (`tenant_id`,`created_at`);