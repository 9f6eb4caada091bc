CREATE TABLE `breaker_probes` (
	`probe_id` varchar(63) CHARACTER SET ascii COLLATE ascii_bin NOT NULL,
	`probed_at` datetime(3) NOT NULL,
	CONSTRAINT `breaker_probes_probe_id` PRIMARY KEY(`probe_id`)
);
