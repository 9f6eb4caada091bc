-- ?author= compares with the column's collation: utf8mb4_unicode_ci gave every character outside the
-- BMP (emoji, CJK Extension B) one weight, so different authors matched; unicode_520_ci does not.
-- Case and accents are still ignored. MariaDB and MySQL rebuild the table (and its author index).
ALTER TABLE `books` MODIFY COLUMN `author` varchar(200) CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_520_ci NOT NULL;