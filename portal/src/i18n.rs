//! Every label of the portal in 简体中文 (the default) and English, in one
//! table, so a missing translation is a failing test rather than a blank.

use std::str::FromStr;

/// The two languages of the portal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
pub enum Lang {
    #[default]
    Zh,
    En,
}

impl Lang {
    /// The `lang` cookie value and the `<html lang>` attribute.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Zh => "zh-CN",
            Lang::En => "en",
        }
    }

    pub fn other(self) -> Lang {
        match self {
            Lang::Zh => Lang::En,
            Lang::En => Lang::Zh,
        }
    }

    /// The language named by a `Cookie` header's `lang=…`, if any.
    pub fn from_cookie_header(header: &str) -> Option<Lang> {
        header
            .split(';')
            .filter_map(|kv| kv.trim().split_once('='))
            .find(|(k, _)| *k == "lang")
            .and_then(|(_, v)| v.parse().ok())
    }
}

impl FromStr for Lang {
    type Err = ();
    fn from_str(s: &str) -> Result<Self, ()> {
        match s {
            "zh-CN" | "zh" => Ok(Lang::Zh),
            "en" => Ok(Lang::En),
            _ => Err(()),
        }
    }
}

/// (key, 简体中文, English).
const LABELS: &[(&str, &str, &str)] = &[
    (
        "app.name",
        "云枢 · 政务云自助服务门户",
        "Yunshu · Government Cloud Portal",
    ),
    ("app.short", "云枢", "Yunshu"),
    ("lang.switch", "English", "中文"),
    ("nav.dashboard", "工作台", "Dashboard"),
    ("nav.profile", "个人信息", "Profile"),
    ("nav.logout", "退出登录", "Sign out"),
    ("nav.skip", "跳到主要内容", "Skip to main content"),
    ("nav.main", "主导航", "Main navigation"),
    ("order.actions", "办理操作", "Actions"),
    ("login.title", "登录", "Sign in"),
    ("login.user", "用户名", "User name"),
    ("login.password", "密码", "Password"),
    ("login.submit", "登录", "Sign in"),
    ("login.busy", "正在登录…", "Signing in…"),
    ("login.need_user", "请输入用户名", "Enter your user name"),
    ("login.need_password", "请输入密码", "Enter your password"),
    (
        "login.hint",
        "使用单位、审核人员、供应商与管理员均从此处登录。",
        "Departments, reviewers, providers and administrators all sign in here.",
    ),
    ("common.loading", "加载中…", "Loading…"),
    ("common.none", "暂无", "None"),
    ("common.error", "出错了", "Something went wrong"),
    (
        "common.retry",
        "请刷新页面重试。",
        "Reload the page to try again.",
    ),
    ("dash.title", "工作台", "Dashboard"),
    ("dash.welcome", "欢迎，", "Welcome, "),
    ("dash.tenant", "使用单位", "Department"),
    ("dash.systems", "信息系统", "Information systems"),
    ("dash.orders", "办理中的工单", "Orders in progress"),
    (
        "dash.no_systems",
        "还没有信息系统。",
        "No information systems yet.",
    ),
    (
        "dash.no_orders",
        "没有办理中的工单。",
        "No orders in progress.",
    ),
    ("dash.maintenance", "计划维护公告", "Planned maintenance"),
    (
        "dash.no_maintenance",
        "近期没有影响本单位信息系统的维护。",
        "No maintenance affecting your systems is announced.",
    ),
    ("mw.when", "维护时间", "When"),
    ("mw.where", "云服务商 / 可用区", "Provider / zones"),
    ("mw.all_zones", "全部可用区", "all zones"),
    ("mw.affects", "影响范围", "What is affected"),
    ("mw.reason", "维护原因", "Reason"),
    ("mw.status", "状态", "Status"),
    ("mw.upcoming", "待开始", "Upcoming"),
    ("mw.in_progress", "进行中", "In progress"),
    ("mw.cancelled", "已取消", "Cancelled"),
    (
        "mw.emergency",
        "故障抢修（无需提前通知）：",
        "Emergency repair (no notice needed): ",
    ),
    (
        "mw.hint",
        "计划内维护须提前至少 3 个工作日通知（大同 000 第十八条、北京 004 第十九条）。",
        "Planned maintenance is announced at least 3 working days ahead (000 art. 18, 004 art. 19).",
    ),
    ("col.number", "编号", "Number"),
    ("col.name", "名称", "Name"),
    ("col.level", "等保级别", "MLPS level"),
    ("col.state", "状态", "State"),
    ("col.type", "系统类型", "System type"),
    ("col.order", "工单号", "Order"),
    ("col.kind", "类型", "Kind"),
    ("col.system", "信息系统", "System"),
    ("col.created", "创建日期", "Created"),
    ("col.deadline", "办理时限", "Deadline"),
    (
        "deadline.left",
        "剩余 {n} 个工作日",
        "{n} working days left",
    ),
    ("deadline.today", "今日到期", "Due today"),
    (
        "deadline.overdue",
        "已超期 {n} 个工作日",
        "Overdue by {n} working days",
    ),
    ("deadline.due", "截止 {date}", "due {date}"),
    ("profile.title", "个人信息", "Profile"),
    ("profile.actor", "账号", "Account"),
    ("profile.roles", "角色", "Roles"),
    ("profile.permissions", "权限", "Permissions"),
    ("nav.new", "新建申请", "New application"),
    ("nav.review", "审核队列", "Review queue"),
    ("new.title", "新建上云申请", "New cloud application"),
    ("new.system", "信息系统", "Information system"),
    ("new.lines", "资源需求", "Resources requested"),
    ("new.add_line", "添加一行", "Add a line"),
    ("new.remove_line", "删除此行", "Remove this line"),
    ("new.submit", "保存并提交", "Save and submit"),
    ("new.save", "保存草稿", "Save draft"),
    ("new.busy", "正在提交…", "Submitting…"),
    (
        "new.fix",
        "请先修正标红的项目。",
        "Please correct the fields marked in red first.",
    ),
    ("line.server_name", "服务器名称", "Server name"),
    ("line.area", "网络区域", "Network zone"),
    ("line.arch", "CPU 架构", "CPU architecture"),
    ("line.vcpu", "vCPU（核）", "vCPU (cores)"),
    ("line.memory", "内存（GB）", "Memory (GB)"),
    ("line.system_disk", "系统盘（GB）", "System disk (GB)"),
    ("line.data_disk", "数据盘（GB）", "Data disk (GB)"),
    ("line.os", "操作系统", "Operating system"),
    ("line.purpose", "用途", "Purpose"),
    ("line.quantity", "数量（台）", "Quantity"),
    ("line.requested", "申请数量", "Requested"),
    ("line.approved", "核定数量", "Approved"),
    ("err.required", "必填", "Required"),
    ("err.range", "超出允许范围", "Out of the allowed range"),
    ("area.gov_extranet", "政务外网区", "Government extranet"),
    ("area.internet", "互联网区", "Internet zone"),
    ("order.title", "工单", "Order"),
    ("order.timeline", "办理记录", "Timeline"),
    ("order.resources", "资源开通进度", "Provisioning progress"),
    (
        "sys.resources",
        "资源及连接关系",
        "Resources and how they connect",
    ),
    (
        "order.no_resources",
        "尚未开通资源。",
        "No resources provisioned yet.",
    ),
    ("order.reason", "意见", "Reason"),
    (
        "order.reason_needed",
        "退回时必须填写意见",
        "A reason is required to refuse",
    ),
    ("order.submit", "提交", "Submit"),
    ("order.accept", "受理", "Accept"),
    ("order.approve", "批准", "Approve"),
    ("order.refuse", "退回", "Refuse"),
    ("order.deliver", "交付确认", "Confirm delivery"),
    ("order.lower", "核减", "Lower"),
    ("order.who", "办理人", "By"),
    ("order.when", "时间", "When"),
    ("order.step", "步骤", "Step"),
    ("col.phase", "运行状态", "State"),
    ("col.ip", "内网地址", "Private IP"),
    ("col.summary", "规格", "Specification"),
    ("col.address", "地址", "Address"),
    ("col.connects", "连接到", "Connected to"),
    ("kind.vm", "云主机", "VM"),
    ("kind.bare_metal", "物理服务器", "Bare-metal server"),
    ("kind.volume", "云硬盘", "Volume"),
    ("kind.vpc", "专有网络 VPC", "VPC"),
    ("kind.subnet", "子网", "Subnet"),
    ("kind.security_group", "安全组", "Security group"),
    ("kind.eip", "公网 IP", "Public IP"),
    ("kind.load_balancer", "负载均衡", "Load balancer"),
    ("kind.waf_policy", "WAF 策略", "WAF policy"),
    ("kind.backup_policy", "备份策略", "Backup policy"),
    ("kind.snapshot", "快照", "Snapshot"),
    ("review.title", "审核队列", "Review queue"),
    (
        "review.empty",
        "没有待审核的工单。",
        "Nothing waiting for review.",
    ),
    ("nav.capacity", "资源容量", "Capacity"),
    ("nav.audit", "审计日志", "Audit log"),
    ("cap.title", "资源池容量", "Pool capacity"),
    (
        "cap.line",
        "分配率超过 {n}% 时自动告警并生成扩容单（7 个自然日内完成）。",
        "Above {n}% allocated an alarm is raised and an expansion order opened (due in 7 days).",
    ),
    ("cap.vcpu", "vCPU（核）", "vCPU"),
    ("cap.memory", "内存", "Memory"),
    ("cap.bandwidth", "带宽", "Bandwidth"),
    ("cap.ips", "公网 IP", "Public IPs"),
    ("cap.storage", "存储", "Storage"),
    (
        "cap.largest",
        "当前可放置的最大虚拟机：",
        "Largest VM that fits now:",
    ),
    ("cap.orders", "扩容单", "Expansion orders"),
    ("cap.pool", "资源池", "Pool"),
    ("cap.resource", "资源", "Resource"),
    ("cap.opened", "开单日期", "Opened"),
    ("cap.due", "完成期限", "Due"),
    ("cap.open", "处理中", "Open"),
    ("cap.closed", "已关闭", "Closed"),
    ("cap.breached", "已超期", "Overdue (SLA breach)"),
    ("audit.title", "审计日志", "Audit log"),
    ("audit.actor", "操作人", "Actor"),
    ("audit.action", "操作", "Action"),
    ("audit.target", "对象", "Target"),
    ("audit.detail", "详情", "Detail"),
    ("audit.from", "起始日期", "From"),
    ("audit.until", "截止日期", "Until"),
    ("audit.filter", "筛选", "Filter"),
    ("audit.export", "导出 CSV", "Export CSV"),
    ("sys.title", "新建信息系统", "New information system"),
    ("sys.change", "申请变更", "Request a change"),
    ("sys.exit", "申请退出", "Request exit"),
    ("sys.orders", "工单记录", "Orders"),
    ("new.title_change", "新建变更申请", "New change request"),
    ("sys.new", "新建信息系统", "New information system"),
    ("sys.schedule", "运行时间", "Run time"),
    ("sys.nature", "网络性质", "Network nature"),
    ("sys.contact", "联系人", "Contact person"),
    ("sys.phone", "联系电话", "Contact phone"),
    ("sys.description", "系统简介", "Description"),
    (
        "sys.submit",
        "保存，下一步填写资源需求",
        "Save, then the resources",
    ),
    ("err.invalid", "格式不正确", "Not a valid value"),
    (
        "err.phone",
        "请输入 11 位手机号或带区号的座机号",
        "Enter an 11-digit mobile or a landline with its area code",
    ),
    ("nav.admin", "平台管理", "Administration"),
    ("admin.title", "平台管理", "Administration"),
    ("admin.tenants", "使用单位", "Departments"),
    ("admin.supervisor", "主管单位", "Supervising unit"),
    ("admin.catalogs", "服务目录", "Service catalogs"),
    ("admin.items", "项", "items"),
    ("admin.add_tenant", "登记使用单位", "Register a department"),
    (
        "admin.code",
        "单位代码（6 位行政区划代码）",
        "Department code (6-digit division code)",
    ),
    ("admin.add", "登记", "Register"),
    ("admin.import", "导入服务目录", "Import a service catalog"),
    ("admin.format", "文件格式", "File format"),
    ("admin.file", "文件内容", "File content"),
    ("admin.import_submit", "导入", "Import"),
    ("admin.imported", "已导入目录", "Imported catalog"),
    (
        "dash.running",
        "资源（运行中 / 总数）",
        "Resources (running / all)",
    ),
    ("dash.cost", "本月费用", "This month's charge"),
    ("dash.cost_total", "截至目前合计", "so far, in total"),
    (
        "dash.billing_from",
        "计费起始（交付确认）",
        "Charged since (delivery)",
    ),
    ("dash.cost_month", "本月截至目前", "This month so far"),
    (
        "dash.not_billed",
        "未交付，不计费",
        "Not delivered, not charged",
    ),
    (
        "dash.cost_hint",
        "按服务目录单价 × 数量 × 时长计算（交付确认起，资源回收止），以月度账单为准。",
        "Catalog unit price × quantity × time (from delivery confirmation until the resources are reclaimed); the monthly statement is what counts.",
    ),
    (
        "dash.unpriced",
        "部分系统所用目录未公布单价，其费用未计入。",
        "Some systems' catalog publishes no unit prices; their charge is not included.",
    ),
    ("cap.trend", "分配率趋势", "Allocation trend"),
    ("cap.days", "近 {n} 天", "Last {n} days"),
    (
        "cap.no_trend",
        "尚无历史数据（每小时记录一次）。",
        "No history yet (recorded every hour).",
    ),
    ("new.catalog", "服务目录", "Service catalog"),
    (
        "new.catalog_hint",
        "规格范围与费用估算按所选目录的单价计算，实际费用以账单为准。",
        "Shape limits and the estimate follow the chosen catalog's unit prices; the bill is what counts.",
    ),
    ("new.estimate", "预计每月", "Estimated per month"),
    (
        "new.no_estimate",
        "所选目录未给出单价，无法估算",
        "The catalog gives no unit price to estimate with",
    ),
    (
        "new.estimate_total",
        "本申请预计每月合计",
        "This application, estimated per month",
    ),
    ("line.backup", "备份空间（GB）", "Backup space (GB)"),
    (
        "extras.public_ips",
        "公网 IP 及端口",
        "Public IPs and ports",
    ),
    ("extras.purpose", "用途", "Purpose"),
    (
        "extras.server",
        "映射的服务器组或负载均衡",
        "Server group or load balancer it maps to",
    ),
    (
        "extras.ports",
        "端口（逗号分隔）",
        "Ports (comma-separated)",
    ),
    ("extras.add_ip", "添加公网 IP", "Add a public IP"),
    ("extras.bandwidth", "带宽（Mbps）", "Bandwidth (Mbps)"),
    ("line.form", "服务器形态", "Server form"),
    ("line.anti_affinity", "反亲和", "Anti-affinity"),
    (
        "anti_affinity.hard",
        "强制分散（每台在不同宿主机，宿主机不足则等待）",
        "Hard (each on its own host; waits when hosts run short)",
    ),
    (
        "anti_affinity.soft",
        "尽量分散（宿主机不足时可同机）",
        "Soft (shares a host when hosts run short)",
    ),
    ("form.vm", "虚拟机", "Virtual machine"),
    (
        "form.bare_metal",
        "物理服务器（裸金属）",
        "Bare-metal server",
    ),
    (
        "line.model",
        "型号（留空为任意型号）",
        "Model (empty = any)",
    ),
    ("svc.network", "专有网络（VPC）", "Private network (VPC)"),
    (
        "svc.network_custom",
        "自定义网段（不选则使用 10.0.0.0/16，每个网络区域一个 /20 子网）",
        "Choose the addresses (otherwise 10.0.0.0/16 with a /20 subnet per network zone)",
    ),
    ("svc.vpc_cidr", "VPC 网段", "VPC CIDR"),
    (
        "svc.subnet_gov",
        "政务外网区子网",
        "Government extranet subnet",
    ),
    (
        "svc.subnet_internet",
        "互联网区子网",
        "Internet zone subnet",
    ),
    (
        "svc.subnet_hint",
        "子网留空则自动分配下一个空闲的 /20",
        "An empty subnet gets the next free /20",
    ),
    ("svc.security_groups", "安全组", "Security groups"),
    ("svc.add_group", "添加安全组", "Add a security group"),
    ("svc.name", "名称", "Name"),
    ("svc.members", "成员服务器组", "Member server groups"),
    (
        "svc.rules",
        "入站规则（其余入站流量一律拒绝）",
        "Inbound rules (all other inbound traffic is denied)",
    ),
    ("svc.add_rule", "添加规则", "Add a rule"),
    ("svc.protocol", "协议", "Protocol"),
    (
        "svc.port_range",
        "端口（如 80 或 8000-8100，留空为全部）",
        "Ports (80 or 8000-8100; empty = all)",
    ),
    (
        "svc.remote",
        "来源（网段或安全组名）",
        "Source (CIDR or group name)",
    ),
    ("svc.any", "全部协议", "Any"),
    ("proto.tcp", "TCP", "TCP"),
    ("proto.udp", "UDP", "UDP"),
    ("proto.icmp", "ICMP", "ICMP"),
    ("proto.http", "HTTP", "HTTP"),
    ("proto.https", "HTTPS", "HTTPS"),
    ("svc.load_balancers", "负载均衡", "Load balancers"),
    ("svc.add_lb", "添加负载均衡", "Add a load balancer"),
    ("svc.lb_members", "后端服务器组", "Backend server group"),
    ("svc.listener_port", "监听端口", "Listener port"),
    ("svc.backend_port", "后端端口", "Backend port"),
    ("svc.algorithm", "调度算法", "Algorithm"),
    ("algo.round_robin", "轮询（RR）", "Round robin (RR)"),
    (
        "algo.weighted_round_robin",
        "加权轮询（WRR）",
        "Weighted round robin (WRR)",
    ),
    (
        "algo.weighted_least_connections",
        "加权最小连接数（WLC）",
        "Weighted least connections (WLC)",
    ),
    ("svc.health", "健康检查", "Health check"),
    ("svc.health_none", "不检查", "None"),
    ("svc.health_path", "检查路径", "Check path"),
    ("svc.waf", "WAF 防护", "WAF protection"),
    ("svc.add_waf", "添加 WAF 策略", "Add a WAF policy"),
    ("svc.waf_lb", "防护的负载均衡", "Load balancer protected"),
    ("svc.waf_mode", "防护模式", "Mode"),
    ("waf.block", "拦截", "Block"),
    ("waf.detect", "仅告警", "Detect only"),
    ("svc.rule_sets", "防护规则", "Rule sets"),
    ("waf.sqli", "SQL 注入", "SQL injection"),
    ("waf.xss", "跨站脚本（XSS）", "Cross-site scripting (XSS)"),
    ("waf.rce", "远程命令执行", "Remote code execution"),
    ("waf.lfi", "本地文件包含", "Local file inclusion"),
    ("waf.rfi", "远程文件包含", "Remote file inclusion"),
    ("waf.scanner", "扫描器探测", "Scanners"),
    ("waf.protocol", "协议违规", "Protocol violations"),
    (
        "svc.cc",
        "CC 防护：每个客户端在周期内的最多请求数；留空不限",
        "CC limit: most requests per client in the period; empty = none",
    ),
    ("svc.cc_requests", "请求数", "Requests"),
    ("svc.cc_period", "周期（秒）", "Period (s)"),
    (
        "svc.allow",
        "白名单（网段，逗号分隔）",
        "Allow list (CIDRs, comma separated)",
    ),
    (
        "svc.deny",
        "黑名单（网段，逗号分隔）",
        "Deny list (CIDRs, comma separated)",
    ),
    ("svc.volumes", "云硬盘", "Data volumes"),
    ("svc.add_volume", "添加云硬盘", "Add a volume"),
    (
        "svc.volume_server",
        "挂载到服务器组（每台一块）",
        "Server group (one volume each)",
    ),
    ("svc.size", "容量（GB）", "Size (GB)"),
    ("svc.tier", "存储类型", "Storage tier"),
    (
        "svc.restore_from",
        "从备份策略或快照恢复（选填，填其名称）",
        "Restore from a backup policy or snapshot (optional, by name)",
    ),
    (
        "tier.standard",
        "普通（2,000–5,000 IOPS）",
        "Standard (2,000–5,000 IOPS)",
    ),
    (
        "tier.high_performance",
        "高性能（10,000–25,000 IOPS）",
        "High performance (10,000–25,000 IOPS)",
    ),
    ("svc.backups", "备份策略", "Backup policies"),
    ("svc.add_backup", "添加备份策略", "Add a backup policy"),
    (
        "svc.backup_target",
        "备份对象（服务器组或云硬盘）",
        "What to back up (server group or volume)",
    ),
    ("svc.backup_type", "备份方式", "Method"),
    ("backup.full", "完整备份", "Full"),
    ("backup.differential", "差异备份", "Differential"),
    ("backup.incremental", "增量备份", "Incremental"),
    ("svc.every", "周期", "Every"),
    ("every.daily", "每天", "Day"),
    ("every.weekly", "每周", "Week"),
    (
        "svc.weekday",
        "星期（1–7，周一至周日）",
        "Weekday (1–7, Monday–Sunday)",
    ),
    (
        "svc.hour",
        "开始时间（北京时间，0–23 点）",
        "Start hour (Beijing time, 0–23)",
    ),
    ("svc.retention", "保留天数", "Retention (days)"),
    ("svc.capacity", "备份空间（GB）", "Backup space (GB)"),
    (
        "svc.bad_cidr",
        "须为 IPv4 网段，如 10.0.1.0/24",
        "must be an IPv4 network such as 10.0.1.0/24",
    ),
    (
        "svc.bad_ports",
        "端口须为 1–65535，如 80 或 8000-8100",
        "ports must be 1–65535, e.g. 80 or 8000-8100",
    ),
    (
        "svc.bad_remote",
        "来源须为网段或本申请中的安全组名",
        "the source must be a CIDR or a security group of this application",
    ),
    (
        "svc.unknown_ref",
        "须为本申请中已填写的名称",
        "must name an item of this application",
    ),
    (
        "svc.bad_number",
        "须为正整数",
        "must be a positive whole number",
    ),
    ("svc.invalid", "请检查填写的值", "please check the values"),
    ("order.services", "网络与服务", "Network and services"),
    ("svc.removed", "移除", "removed"),
    (
        "svc.remove_item",
        "移除此项（按名称删除系统中已有的同名项）",
        "Remove it (deletes the system's item of this name)",
    ),
    ("svc.snapshots", "快照", "Snapshots"),
    ("svc.add_snapshot", "添加快照", "Add a snapshot"),
    (
        "svc.snapshot_source",
        "快照对象（服务器组或云硬盘）",
        "Of what (server group or volume)",
    ),
    (
        "extras.bad_ports",
        "端口须为 1–65535，至少一个",
        "Ports must be 1–65535, at least one",
    ),
    (
        "extras.pick_server",
        "请选择本申请中的服务器",
        "Pick a server of this application",
    ),
    ("extras.bastion", "堡垒机账号", "Bastion-host accounts"),
    ("extras.holder", "账号使用人", "Account holder"),
    ("extras.account", "账号名", "Account name"),
    ("extras.department", "使用部门", "Department"),
    ("extras.servers", "需访问的服务器", "Servers to reach"),
    (
        "extras.add_bastion",
        "添加堡垒机账号",
        "Add a bastion account",
    ),
    (
        "admin.home",
        "使用单位与服务目录",
        "Departments and catalogs",
    ),
    ("admin.users", "用户与角色", "Users and roles"),
    ("users.id", "用户名", "User name"),
    ("users.roles", "角色（范围）", "Roles (scope)"),
    ("users.role", "角色", "Role"),
    ("users.provider", "云服务商平台", "Provider platform"),
    ("users.add", "新建用户", "Create user"),
    ("users.created", "已创建用户", "Created user"),
    ("users.actions", "操作", "Actions"),
    ("users.disable", "停用", "Disable"),
    ("users.enable", "启用", "Enable"),
    ("users.reset_password", "重置密码", "Reset password"),
    (
        "users.revoke",
        "撤销会话与令牌",
        "Revoke sessions and tokens",
    ),
    ("users.remove_binding", "移除", "Remove"),
    ("users.cancel", "取消", "Cancel"),
    (
        "users.new_password",
        "新密码（留空则由系统生成）",
        "New password (leave empty to have one generated)",
    ),
    (
        "users.generated_password",
        "新密码仅显示这一次，请当面转交用户：",
        "The new password is shown only this once; hand it to the user in person:",
    ),
    (
        "users.disabled_done",
        "已停用，其会话与令牌已全部失效：",
        "Disabled; all their sessions and tokens ended:",
    ),
    ("users.enabled_done", "已启用：", "Enabled:"),
    (
        "users.reset_done",
        "已重置密码，原有会话已结束：",
        "Password reset; their sessions ended:",
    ),
    (
        "users.revoked_done",
        "已撤销全部会话与令牌：",
        "All sessions and tokens revoked:",
    ),
    ("users.binding_removed", "已移除角色：", "Role removed:"),
    (
        "users.password_rule",
        "至少 10 位，且须同时包含字母和数字",
        "At least 10 characters, with letters and digits",
    ),
    (
        "users.no_password",
        "平台管理员不设置密码：创建后显示一次性激活链接，由本人设置密码（三员分立）。",
        "Platform administrators set no passwords: a one-time activation link is shown after creation and the user sets their own.",
    ),
    (
        "users.activation_link",
        "一次性激活链接仅显示这一次（72 小时内有效），请转交本人设置密码：",
        "The one-time activation link is shown only this once (valid for 72 hours); give it to the user, who sets their own password:",
    ),
    ("activate.title", "激活账号", "Activate your account"),
    (
        "activate.hint",
        "请用管理员转交的一次性激活码设置您自己的密码，管理员不会知道它。",
        "Set your own password with the one-time activation code your administrator gave you; nobody else will know it.",
    ),
    ("activate.code", "激活码", "Activation code"),
    ("activate.password", "新密码", "New password"),
    ("activate.confirm", "确认新密码", "Confirm the new password"),
    (
        "activate.need_code",
        "请输入激活码",
        "Enter the activation code",
    ),
    (
        "activate.mismatch",
        "两次输入的密码不一致",
        "The passwords do not match",
    ),
    ("activate.submit", "设置密码", "Set password"),
    ("activate.busy", "正在设置…", "Setting…"),
    (
        "activate.done",
        "密码已设置，可以登录：",
        "Your password is set; you can sign in:",
    ),
    ("activate.login", "去登录", "Sign in"),
    (
        "drivers.title",
        "驱动与引导令牌",
        "Drivers and bootstrap tokens",
    ),
    (
        "drivers.none",
        "尚无已注册的驱动。",
        "No driver has registered yet.",
    ),
    ("drivers.provider", "云服务商平台", "Provider platform"),
    ("drivers.endpoint", "地址", "Endpoint"),
    ("drivers.driver", "驱动及版本", "Driver and version"),
    ("drivers.health", "健康状态", "Health"),
    ("drivers.last_seen", "最近联系", "Last seen"),
    (
        "drivers.cert_until",
        "证书有效期至",
        "Certificate valid until",
    ),
    ("drivers.simulator", "模拟器", "Simulator"),
    (
        "drivers.token",
        "创建驱动引导令牌",
        "Create a driver bootstrap token",
    ),
    (
        "drivers.token_help",
        "新驱动凭一次性令牌向云枢注册并领取双向 TLS 证书；令牌只显示一次。",
        "A new driver registers with a one-time token and receives its mutual-TLS certificate; the token is shown once.",
    ),
    ("drivers.ttl_hours", "有效期（小时）", "Valid for (hours)"),
    (
        "drivers.token_once",
        "请立即复制，此令牌不会再次显示。失效时间：",
        "Copy it now; it will not be shown again. Expires:",
    ),
    ("drivers.create_token", "创建令牌", "Create token"),
    (
        "rules.title",
        "办理时限与工作日历",
        "Deadlines and calendar",
    ),
    ("rules.policies", "办理时限规则", "Deadline policies"),
    ("rules.step", "环节", "Step"),
    ("rules.limit", "时限", "Limit"),
    ("rules.source", "依据", "Source"),
    ("rules.calendar", "工作日历", "Working-day calendar"),
    ("rules.holidays", "法定节假日", "Public holidays"),
    ("rules.make_up", "调休上班日", "Make-up working days"),
    (
        "rules.add_policy",
        "新增或修改自定义规则",
        "Add or change an operator policy",
    ),
    ("rules.policy_name", "规则名称", "Policy name"),
    ("rules.add_year", "新增年度日历", "Add a calendar year"),
    ("rules.year", "年份", "Year"),
    ("rules.file", "TOML 文件内容", "TOML file content"),
    ("rules.save", "保存", "Save"),
    (
        "rules.saved",
        "已保存，此后的时限按此计算。",
        "Saved; deadlines from now on use it.",
    ),
    (
        "sys.xinchuang",
        "信创系统（仅国产芯片：鲲鹏/飞腾/海光）",
        "Xinchuang system (domestic chips only: Kunpeng/Phytium/Hygon)",
    ),
    ("sys.xinchuang_badge", "信创系统", "Xinchuang system"),
    (
        "new.xinchuang_hint",
        "所选信息系统为信创系统：服务器仅可选国产芯片架构（arm64 鲲鹏/飞腾、c86 海光）。",
        "The chosen system is a xinchuang system: servers may only use domestic chips (arm64 Kunpeng/Phytium, c86 Hygon).",
    ),
    ("rt.title", "数据保留期", "Data retention"),
    (
        "rt.kept_until",
        "数据资源和日志保留至",
        "Data and logs kept until",
    ),
    (
        "rt.then",
        "（服务器已关机、停止计费；到期后自动清除）",
        "(servers powered off, no charge; purged automatically on that day)",
    ),
    (
        "rt.no_period",
        "适用规则不要求保留数据：系统资源随退出收回并清除。",
        "The policy keeps no data: the resources are reclaimed and purged with the exit.",
    ),
    ("rt.early", "提前清除数据", "Purge the data early"),
    (
        "rt.reason",
        "提前清除的理由（如数据已移交使用单位）",
        "Why purge before the end (e.g. the data was handed over)",
    ),
    (
        "rt.confirm",
        "确认清除：该系统的云主机、云硬盘、备份将被删除，不可恢复",
        "I confirm: the system's servers, disks and backups will be deleted for good",
    ),
    (
        "rt.missing",
        "请填写理由并勾选确认",
        "Enter a reason and tick the confirmation",
    ),
    ("rt.submit", "决定提前清除", "Decide to purge now"),
    ("tp.title", "测试期", "Test period"),
    ("tp.due", "测试期截止日", "Test period ends on"),
    ("tp.extensions", "延长记录", "Extensions"),
    ("tp.previous", "原截止日", "Previous end"),
    ("tp.until", "延至", "Extended to"),
    ("tp.extend", "延长测试期", "Extend the test period"),
    ("tp.new_due", "新的截止日", "New last day"),
    (
        "tp.reason",
        "延长理由（确有必要的情况）",
        "Reason (why it is needed)",
    ),
    ("tp.submit", "批准延长", "Approve the extension"),
    (
        "tp.missing",
        "请填写新的截止日和延长理由",
        "Enter the new last day and a reason",
    ),
    ("ut.title", "使用期", "Usage period"),
    ("ut.starts", "起始日", "Starts on"),
    ("ut.expires", "到期日", "Last day of use"),
    ("ut.notice", "到期提醒日", "Notice due on"),
    (
        "ut.none",
        "使用期自交付确认之日起计算。",
        "The usage period starts at delivery confirmation.",
    ),
    ("ut.requested", "已申请延期至", "Extension requested until"),
    ("ut.expired", "使用期已届满", "Usage period ended"),
    (
        "ut.offline_approved",
        "已批准强制下线，下线期限",
        "Forced offline approved, offline by",
    ),
    ("ut.offline", "已下线", "Offline since"),
    ("ut.request", "申请延长使用期", "Request an extension"),
    ("ut.until", "延长至", "Extend until"),
    ("ut.reason", "申请理由", "Reason"),
    ("ut.send", "提交延期申请", "Send the request"),
    (
        "ut.confirm_request",
        "确认提交延期申请？",
        "Send this extension request?",
    ),
    ("ut.force", "批准强制下线", "Approve the forced offline"),
    (
        "ut.confirm_force",
        "确认批准强制下线？期限届满后系统将被下线。",
        "Approve the forced offline? The system goes offline at the end of the window.",
    ),
    ("ut.done", "已提交", "Done"),
    ("su.title", "服务状态", "Service status"),
    ("su.normal", "正常提供服务", "In service"),
    ("su.suspended", "已暂停", "Suspended"),
    ("su.because", "（原因：", " (reason: "),
    ("su.close", "）", ")"),
    ("su.suspend", "暂停服务", "Suspend the service"),
    ("su.resume", "恢复服务", "Resume the service"),
    ("su.reason", "理由", "Reason"),
    ("su.missing", "请填写理由", "Enter a reason"),
    (
        "su.confirm_suspend",
        "确认暂停该系统的云服务？其服务器将关机，磁盘、网络和备份保留，暂停期间照常计费。",
        "Suspend this system? Its servers are powered off; disks, network and backups are kept, and it is still charged.",
    ),
    (
        "su.confirm_resume",
        "确认恢复该系统的云服务？其服务器将重新开机。",
        "Resume this system? Its servers are powered on again.",
    ),
    ("common.confirm", "确认", "Confirm"),
    ("common.cancel", "取消", "Cancel"),
    ("notfound.title", "页面不存在", "Page not found"),
    ("notfound.back", "返回工作台", "Back to the dashboard"),
    ("org.title", "分级管理", "Hierarchical administration"),
    ("org.units", "组织机构", "Org units"),
    ("org.level", "级别", "Level"),
    ("org.tenants", "挂接使用单位", "Attached tenants"),
    ("org.report", "下级报表", "Report of the units below"),
    ("org.show_report", "查看报表", "Show report"),
    ("org.systems", "信息系统", "Systems"),
    ("org.orders", "工单", "Work orders"),
    ("org.resources", "资源", "Resources"),
    ("org.cost", "本月费用（元）", "This month's charge (yuan)"),
    ("org.bindings", "用户与授权", "Users and role bindings"),
    ("org.user", "用户", "User"),
    ("org.member", "所属单位", "Member of"),
    (
        "org.permissions",
        "权限（逗号分隔，留空为角色全部权限）",
        "Permissions (comma-separated; empty: all of the role's)",
    ),
    ("org.adjust", "调整权限", "Adjust"),
    ("org.revoke", "撤销授权", "Revoke"),
    ("org.grant", "授权", "Grant"),
    (
        "org.scope",
        "范围（使用单位编号或组织机构标识）",
        "Scope (tenant code or org unit id)",
    ),
    ("org.done", "已完成：", "Done:"),
    ("org.none", "暂无", "None"),
];

/// The label `key` in `lang`; the key itself if it is unknown (a test keeps
/// that from shipping).
pub fn t(lang: Lang, key: &str) -> &'static str {
    LABELS
        .iter()
        .find(|(k, _, _)| *k == key)
        .map(|(_, zh, en)| match lang {
            Lang::Zh => *zh,
            Lang::En => *en,
        })
        .unwrap_or("?")
}

/// Names of states, kinds and roles the API reports as snake_case codes.
const CODES: &[(&str, &str, &str)] = &[
    ("draft", "草稿", "Draft"),
    ("submitted", "已提交", "Submitted"),
    ("accepted", "已受理", "Accepted"),
    ("expert_review", "专家评审", "Expert review"),
    ("refused", "已退回", "Refused"),
    ("approved", "已批准", "Approved"),
    ("test_env_ready", "测试环境就绪", "Test environment ready"),
    ("delivered", "已交付", "Delivered"),
    ("live", "已上线", "Live"),
    ("exit_requested", "申请退出", "Exit requested"),
    ("exited", "已退出", "Exited"),
    ("purged", "已清除", "Purged"),
    ("cancelled", "已撤销", "Cancelled"),
    ("onboarding", "上云申请", "Onboarding"),
    ("go_live", "上线申请", "Go-live"),
    ("change", "变更申请", "Change"),
    ("exit", "退出申请", "Exit"),
    ("level1", "一级", "Level 1"),
    ("level2", "二级", "Level 2"),
    ("level3", "三级", "Level 3"),
    ("level4", "四级", "Level 4"),
    ("tenant_user", "使用单位用户", "Department user"),
    ("tenant_admin", "使用单位管理员", "Department administrator"),
    ("reviewer", "审核人员", "Reviewer"),
    ("approver", "审批人员", "Approver"),
    ("provider_operator", "供应商运维", "Provider operator"),
    ("platform_admin", "系统管理员", "System administrator"),
    ("security_admin", "安全管理员", "Security administrator"),
    ("unit_admin", "分级管理员", "Unit administrator"),
    ("auditor", "安全审计员", "Security auditor"),
    ("business_production", "业务生产系统", "Business production"),
    ("internal_office", "内部办公", "Internal office"),
    ("public_service", "公众服务", "Public service"),
    ("portal", "门户网站", "Portal website"),
    ("mobile_app", "移动APP", "Mobile app"),
    ("video", "视频系统", "Video"),
    ("other", "其他", "Other"),
    ("unrated", "未定级", "Not rated"),
    ("7x24", "7×24 小时", "24×7"),
    ("5x8", "5×8 小时（工作日）", "Working hours (5×8)"),
    ("gov_extranet", "政务外网", "Government extranet"),
    ("internet", "互联网", "Internet"),
    (
        "gov_extranet_and_internet",
        "政务外网和互联网",
        "Government extranet and Internet",
    ),
    ("dedicated_line", "专线", "Dedicated line"),
    ("running", "运行中", "Running"),
    ("provisioning", "开通中", "Provisioning"),
    ("pending", "等待中", "Pending"),
    ("stopped", "已停止", "Stopped"),
    ("failed", "失败", "Failed"),
    ("deleting", "删除中", "Deleting"),
    ("deleted", "已删除", "Deleted"),
    ("active", "启用", "Active"),
    ("disabled", "停用", "Disabled"),
    ("health.unknown", "待检查", "Not yet checked"),
    ("health.healthy", "正常", "Healthy"),
    ("health.unreachable", "无法连接", "Unreachable"),
    ("unit.working_days", "个工作日", "working days"),
    ("unit.natural_days", "个自然日", "calendar days"),
    ("unit.months", "个月", "months"),
    ("unit.years", "年", "years"),
    ("origin.built_in", "内置", "built in"),
    ("origin.operator", "运营方自定义", "operator's own"),
];

/// The display name of an API code in `lang`; the code itself if unknown.
pub fn code_name(lang: Lang, code: &str) -> String {
    CODES
        .iter()
        .find(|(c, _, _)| *c == code)
        .map(|(_, zh, en)| match lang {
            Lang::Zh => (*zh).to_owned(),
            Lang::En => (*en).to_owned(),
        })
        .unwrap_or_else(|| code.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_label_has_both_languages_and_keys_are_unique() {
        let mut keys = std::collections::BTreeSet::new();
        for (k, zh, en) in LABELS.iter().chain(CODES) {
            assert!(keys.insert(*k), "duplicate key {k}");
            assert!(!zh.trim().is_empty(), "{k}: no Chinese");
            assert!(!en.trim().is_empty(), "{k}: no English");
            assert!(
                // Protocol names are the same in both languages.
                !zh.is_ascii() || k.starts_with("lang.") || k.starts_with("proto."),
                "{k}: the Chinese label {zh:?} looks untranslated"
            );
        }
    }

    #[test]
    fn every_key_used_in_the_pages_exists() {
        // Keys are string literals `t(…, "x.y")`/`tr("x.y")` in the sources.
        for (file, text) in [
            ("app.rs", include_str!("app.rs")),
            ("pages/login.rs", include_str!("pages/login.rs")),
            ("pages/dashboard.rs", include_str!("pages/dashboard.rs")),
            ("pages/profile.rs", include_str!("pages/profile.rs")),
            ("pages/order_new.rs", include_str!("pages/order_new.rs")),
            (
                "pages/order_extras.rs",
                include_str!("pages/order_extras.rs"),
            ),
            (
                "pages/order_services.rs",
                include_str!("pages/order_services.rs"),
            ),
            ("pages/mod.rs", include_str!("pages/mod.rs")),
            (
                "pages/order_services_view.rs",
                include_str!("pages/order_services_view.rs"),
            ),
            (
                "pages/order_detail.rs",
                include_str!("pages/order_detail.rs"),
            ),
            ("pages/review.rs", include_str!("pages/review.rs")),
            ("pages/capacity.rs", include_str!("pages/capacity.rs")),
            ("pages/audit.rs", include_str!("pages/audit.rs")),
            ("pages/admin.rs", include_str!("pages/admin.rs")),
            ("pages/admin_users.rs", include_str!("pages/admin_users.rs")),
            ("pages/admin_org.rs", include_str!("pages/admin_org.rs")),
            (
                "pages/admin_drivers.rs",
                include_str!("pages/admin_drivers.rs"),
            ),
            ("pages/admin_rules.rs", include_str!("pages/admin_rules.rs")),
            ("pages/system_new.rs", include_str!("pages/system_new.rs")),
            ("pages/test_period.rs", include_str!("pages/test_period.rs")),
            ("pages/retention.rs", include_str!("pages/retention.rs")),
            ("pages/usage_term.rs", include_str!("pages/usage_term.rs")),
            ("pages/suspension.rs", include_str!("pages/suspension.rs")),
            (
                "pages/system_detail.rs",
                include_str!("pages/system_detail.rs"),
            ),
        ] {
            // `tr("k")`, label props (`label="k"`, `title="k"`, `what="k"`),
            // and `i18n::t(lang, "k")` / `i18n::t(l, "k")`.
            let mut keys: Vec<&str> = Vec::new();
            for marker in ["tr(\"", " label=\"", " title=\"", " what=\""] {
                keys.extend(
                    text.split(marker)
                        .skip(1)
                        .map(|p| p.split('"').next().unwrap_or_default()),
                );
            }
            keys.extend(text.split("i18n::t(").skip(1).filter_map(|p| {
                let call = p.split(')').next()?;
                call.split('"').nth(1)
            }));
            for key in keys {
                assert!(
                    LABELS.iter().any(|(k, _, _)| *k == key),
                    "{file}: label {key:?} is not in the table"
                );
            }
        }
    }

    #[test]
    fn language_from_the_cookie() {
        assert_eq!(Lang::from_cookie_header("a=1; lang=en"), Some(Lang::En));
        assert_eq!(Lang::from_cookie_header("lang=zh-CN"), Some(Lang::Zh));
        assert_eq!(Lang::from_cookie_header("x=y"), None);
    }
}
