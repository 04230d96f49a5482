-- The model's tables as SQLAlchemy creates them on PostgreSQL (models/database/subscription.py):
-- Boolean is BOOLEAN, DateTime(timezone=True) is TIMESTAMP WITH TIME ZONE, JSON is JSON,
-- Numeric(10, 2) is NUMERIC(10, 2), primary keys are SERIAL. Every table has TimestampMixin's
-- created_at and updated_at. platforms keeps only the columns tollgate reads, plus one.
CREATE TABLE platforms (
	id SERIAL NOT NULL,
	code VARCHAR(50) NOT NULL,
	name VARCHAR(100) NOT NULL,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (code)
);

CREATE TABLE subscription_tiers (
	id SERIAL NOT NULL,
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
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(platform_id) REFERENCES platforms (id) ON DELETE CASCADE
);
CREATE INDEX idx_tier_platform_active ON subscription_tiers (platform_id, is_active);

CREATE TABLE addon_products (
	id SERIAL NOT NULL,
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
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (code)
);

CREATE TABLE vendor_subscriptions (
	id SERIAL NOT NULL,
	vendor_id INTEGER NOT NULL,
	tier_id INTEGER,
	tier VARCHAR(20) NOT NULL,
	status VARCHAR(20) NOT NULL,
	period_start TIMESTAMP WITH TIME ZONE NOT NULL,
	period_end TIMESTAMP WITH TIME ZONE NOT NULL,
	is_annual BOOLEAN NOT NULL,
	trial_ends_at TIMESTAMP WITH TIME ZONE,
	card_collected_at TIMESTAMP WITH TIME ZONE,
	orders_this_period INTEGER NOT NULL,
	orders_limit_reached_at TIMESTAMP WITH TIME ZONE,
	custom_orders_limit INTEGER,
	custom_products_limit INTEGER,
	custom_team_limit INTEGER,
	stripe_customer_id VARCHAR(100),
	stripe_subscription_id VARCHAR(100),
	stripe_price_id VARCHAR(100),
	stripe_payment_method_id VARCHAR(100),
	proration_behavior VARCHAR(50),
	scheduled_tier_change VARCHAR(30),
	scheduled_change_at TIMESTAMP WITH TIME ZONE,
	payment_retry_count INTEGER NOT NULL,
	last_payment_error TEXT,
	cancelled_at TIMESTAMP WITH TIME ZONE,
	cancellation_reason TEXT,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (vendor_id),
	FOREIGN KEY(tier_id) REFERENCES subscription_tiers (id)
);
CREATE INDEX idx_subscription_vendor_status ON vendor_subscriptions (vendor_id, status);
CREATE INDEX idx_subscription_period ON vendor_subscriptions (period_start, period_end);

CREATE TABLE vendor_addons (
	id SERIAL NOT NULL,
	vendor_id INTEGER NOT NULL,
	addon_product_id INTEGER NOT NULL,
	status VARCHAR(20) NOT NULL,
	domain_name VARCHAR(255),
	quantity INTEGER NOT NULL,
	stripe_subscription_item_id VARCHAR(100),
	period_start TIMESTAMP WITH TIME ZONE,
	period_end TIMESTAMP WITH TIME ZONE,
	cancelled_at TIMESTAMP WITH TIME ZONE,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	FOREIGN KEY(addon_product_id) REFERENCES addon_products (id)
);

CREATE TABLE stripe_webhook_events (
	id SERIAL NOT NULL,
	event_id VARCHAR(100) NOT NULL,
	event_type VARCHAR(100) NOT NULL,
	status VARCHAR(20) NOT NULL,
	processed_at TIMESTAMP WITH TIME ZONE,
	error_message TEXT,
	payload_encrypted TEXT,
	vendor_id INTEGER,
	subscription_id INTEGER,
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (event_id),
	FOREIGN KEY(subscription_id) REFERENCES vendor_subscriptions (id)
);

CREATE TABLE billing_history (
	id SERIAL NOT NULL,
	vendor_id INTEGER NOT NULL,
	stripe_invoice_id VARCHAR(100),
	stripe_payment_intent_id VARCHAR(100),
	invoice_number VARCHAR(50),
	invoice_date TIMESTAMP WITH TIME ZONE NOT NULL,
	due_date TIMESTAMP WITH TIME ZONE,
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
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (stripe_invoice_id)
);

CREATE TABLE capacity_snapshots (
	id SERIAL NOT NULL,
	snapshot_date TIMESTAMP WITH TIME ZONE NOT NULL,
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
	created_at TIMESTAMP WITH TIME ZONE NOT NULL,
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL,
	PRIMARY KEY (id),
	UNIQUE (snapshot_date)
);
