-- The model's tables as SQLAlchemy creates them on SQLite (models/database/subscription.py):
-- Boolean is BOOLEAN holding 0/1, DateTime(timezone=True) is DATETIME holding text such as
-- 2026-12-07 14:25:20.768411, JSON is JSON holding text, Numeric(10, 2) is NUMERIC(10, 2).
-- Every table has TimestampMixin's created_at and updated_at. platforms keeps only the
-- columns tollgate reads, plus one it does not.
CREATE TABLE platforms (
	id INTEGER NOT NULL,
	code VARCHAR(50) NOT NULL,
	name VARCHAR(100) NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (code)
);

CREATE TABLE subscription_tiers (
	id INTEGER NOT NULL,
	platform_id INTEGER,
	code VARCHAR(30) NOT NULL,
	name VARCHAR(100) NOT NULL,
	description TEXT,
	price_monthly_cents INTEGER NOT NULL,
	price_annual_cents INTEGER,
	orders_per_month INTEGER,
	products_limit INTEGER,
	team_members INTEGER,
	order_history_months INTEGER,
	cms_pages_limit INTEGER,
	cms_custom_pages_limit INTEGER,
	features JSON,
	stripe_product_id VARCHAR(100),
	stripe_price_monthly_id VARCHAR(100),
	stripe_price_annual_id VARCHAR(100),
	display_order INTEGER,
	is_active BOOLEAN NOT NULL,
	is_public BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(platform_id) REFERENCES platforms (id) ON DELETE CASCADE
);
CREATE INDEX idx_tier_platform_active ON subscription_tiers (platform_id, is_active);

CREATE TABLE addon_products (
	id INTEGER NOT NULL,
	code VARCHAR(50) NOT NULL,
	name VARCHAR(100) NOT NULL,
	description TEXT,
	category VARCHAR(50) NOT NULL,
	price_cents INTEGER NOT NULL,
	billing_period VARCHAR(20) NOT NULL,
	quantity_unit VARCHAR(50),
	quantity_value INTEGER,
	stripe_product_id VARCHAR(100),
	stripe_price_id VARCHAR(100),
	display_order INTEGER,
	is_active BOOLEAN NOT NULL,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (code)
);

CREATE TABLE vendor_subscriptions (
	id INTEGER NOT NULL,
	vendor_id INTEGER NOT NULL,
	tier_id INTEGER,
	tier VARCHAR(20) NOT NULL,
	status VARCHAR(20) NOT NULL,
	period_start DATETIME NOT NULL,
	period_end DATETIME NOT NULL,
	is_annual BOOLEAN NOT NULL,
	trial_ends_at DATETIME,
	card_collected_at DATETIME,
	orders_this_period INTEGER NOT NULL,
	orders_limit_reached_at DATETIME,
	custom_orders_limit INTEGER,
	custom_products_limit INTEGER,
	custom_team_limit INTEGER,
	stripe_customer_id VARCHAR(100),
	stripe_subscription_id VARCHAR(100),
	stripe_price_id VARCHAR(100),
	stripe_payment_method_id VARCHAR(100),
	proration_behavior VARCHAR(50),
	scheduled_tier_change VARCHAR(30),
	scheduled_change_at DATETIME,
	payment_retry_count INTEGER NOT NULL,
	last_payment_error TEXT,
	cancelled_at DATETIME,
	cancellation_reason TEXT,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (vendor_id),
	FOREIGN KEY(tier_id) REFERENCES subscription_tiers (id)
);
CREATE INDEX idx_subscription_vendor_status ON vendor_subscriptions (vendor_id, status);
CREATE INDEX idx_subscription_period ON vendor_subscriptions (period_start, period_end);

CREATE TABLE vendor_addons (
	id INTEGER NOT NULL,
	vendor_id INTEGER NOT NULL,
	addon_product_id INTEGER NOT NULL,
	status VARCHAR(20) NOT NULL,
	domain_name VARCHAR(255),
	quantity INTEGER NOT NULL,
	stripe_subscription_item_id VARCHAR(100),
	period_start DATETIME,
	period_end DATETIME,
	cancelled_at DATETIME,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(addon_product_id) REFERENCES addon_products (id)
);

CREATE TABLE stripe_webhook_events (
	id INTEGER NOT NULL,
	event_id VARCHAR(100) NOT NULL,
	event_type VARCHAR(100) NOT NULL,
	status VARCHAR(20) NOT NULL,
	processed_at DATETIME,
	error_message TEXT,
	payload_encrypted TEXT,
	vendor_id INTEGER,
	subscription_id INTEGER,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (event_id),
	FOREIGN KEY(subscription_id) REFERENCES vendor_subscriptions (id)
);

CREATE TABLE billing_history (
	id INTEGER NOT NULL,
	vendor_id INTEGER NOT NULL,
	stripe_invoice_id VARCHAR(100),
	stripe_payment_intent_id VARCHAR(100),
	invoice_number VARCHAR(50),
	invoice_date DATETIME NOT NULL,
	due_date DATETIME,
	subtotal_cents INTEGER NOT NULL,
	tax_cents INTEGER NOT NULL,
	total_cents INTEGER NOT NULL,
	amount_paid_cents INTEGER NOT NULL,
	currency VARCHAR(3) NOT NULL,
	status VARCHAR(20) NOT NULL,
	invoice_pdf_url VARCHAR(500),
	hosted_invoice_url VARCHAR(500),
	description TEXT,
	line_items JSON,
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (stripe_invoice_id)
);

CREATE TABLE capacity_snapshots (
	id INTEGER NOT NULL,
	snapshot_date DATETIME NOT NULL,
	total_vendors INTEGER NOT NULL,
	active_vendors INTEGER NOT NULL,
	trial_vendors INTEGER NOT NULL,
	total_subscriptions INTEGER NOT NULL,
	active_subscriptions INTEGER NOT NULL,
	total_products INTEGER NOT NULL,
	total_orders_month INTEGER NOT NULL,
	total_team_members INTEGER NOT NULL,
	storage_used_gb NUMERIC(10, 2) NOT NULL,
	db_size_mb NUMERIC(10, 2) NOT NULL,
	theoretical_products_limit INTEGER,
	theoretical_orders_limit INTEGER,
	theoretical_team_limit INTEGER,
	tier_distribution JSON,
	avg_response_ms INTEGER,
	peak_cpu_percent NUMERIC(5, 2),
	peak_memory_percent NUMERIC(5, 2),
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (snapshot_date)
);
