"""The demo brand's fixed facts: 山隅咖啡 Shanyu Coffee (an invented chain), its stores, staff,
tags, attribute schema, and the weighted tables the synthetic customers are drawn from."""

from dataclasses import dataclass

BRAND_NAME = "山隅咖啡 Shanyu Coffee"
DEMO_SLUG = "demo"
EMAIL_DOMAIN = "demo.siyu.local"
OWNER_EMAIL = f"owner@{EMAIL_DOMAIN}"

# Invented WeChat app ids: the brand's mini program and its official account.
MINI_PROGRAM_APP_ID = "wx5f3c8a91d2e7b604"
OFFICIAL_ACCOUNT_APP_ID = "wx1d9e42b7c3a05f8e"


@dataclass(frozen=True)
class Store:
    tag: str  # the 门店 tag and the favorite_store value
    city: str
    province: str
    opened_days_ago: int
    advisor_email: str
    advisor_name: str


# Oldest first; an older store has grown a larger share of the pool.
STORES = (
    Store("静安店", "上海", "上海", 540, f"zhang.yuxuan@{EMAIL_DOMAIN}", "张雨萱"),
    Store("西湖店", "杭州", "浙江", 470, f"wu.jiaqi@{EMAIL_DOMAIN}", "吴佳琪"),
    Store("三里屯店", "北京", "北京", 400, f"zhao.yiming@{EMAIL_DOMAIN}", "赵一鸣"),
    Store("南山店", "深圳", "广东", 330, f"huang.junjie@{EMAIL_DOMAIN}", "黄俊杰"),
    Store("天河店", "广州", "广东", 290, f"liang.xiaotong@{EMAIL_DOMAIN}", "梁晓彤"),
    Store("太古里店", "成都", "四川", 230, f"yang.xinyi@{EMAIL_DOMAIN}", "杨欣怡"),
    Store("新街口店", "南京", "江苏", 150, f"sun.haoran@{EMAIL_DOMAIN}", "孙浩然"),
    Store("江汉路店", "武汉", "湖北", 70, f"he.jing@{EMAIL_DOMAIN}", "何静"),
)

# (role, email, name). Store advisors are agents: they see only the contacts they own.
STAFF = (
    ("owner", OWNER_EMAIL, "林晓雯"),
    ("admin", f"zhou.min@{EMAIL_DOMAIN}", "周敏"),
    ("operator", f"chen.siyuan@{EMAIL_DOMAIN}", "陈思远"),
    ("operator", f"liu.jiayi@{EMAIL_DOMAIN}", "刘佳怡"),
    ("analyst", f"wang.zihao@{EMAIL_DOMAIN}", "王子豪"),
    *(("agent", s.advisor_email, s.advisor_name) for s in STORES),
)

# Tag groups: (name, colour, tags).
STAGE, TASTE, STORE, CAMPAIGN = "客户阶段", "偏好", "门店", "来源活动"
TAG_GROUPS = (
    (STAGE, "green", ("新客", "复购", "沉睡")),
    (TASTE, "orange", ("美式", "拿铁", "手冲", "燕麦奶", "低因")),
    (STORE, "blue", tuple(s.tag for s in STORES)),
    (CAMPAIGN, "purple", ("开业引流", "会员日", "小红书种草", "抖音团购", "老带新")),
)

MEMBER_LEVELS = ("普通", "银卡", "金卡", "黑卡")
# (key, label, type, choices)
ATTRIBUTES = (
    ("member_level", "会员等级", "choice", list(MEMBER_LEVELS)),
    ("favorite_store", "常去门店", "text", []),
    ("cups_per_week", "每周杯数", "number", []),
    ("allergy_oat", "燕麦过敏", "bool", []),
    ("member_since", "入会日期", "date", []),
)

# Where contacts come from, near a store and elsewhere (online only), with weights.
SOURCES_NEAR_STORE = (
    ("store_qr", 40),
    ("mini_program", 20),
    ("wecom", 12),
    ("douyin", 8),
    ("xiaohongshu", 8),
    ("official_account", 6),
    ("referral", 6),
)
SOURCES_ONLINE = (
    ("mini_program", 30),
    ("douyin", 22),
    ("xiaohongshu", 22),
    ("official_account", 12),
    ("referral", 10),
    ("wecom", 4),
)

# Cities without a store (online customers): (city, province, weight).
OTHER_CITIES = (
    ("苏州", "江苏", 8),
    ("宁波", "浙江", 5),
    ("重庆", "重庆", 7),
    ("西安", "陕西", 5),
    ("长沙", "湖南", 5),
    ("天津", "天津", 5),
    ("厦门", "福建", 4),
    ("青岛", "山东", 4),
    ("郑州", "河南", 3),
    ("合肥", "安徽", 3),
    ("东莞", "广东", 3),
    ("无锡", "江苏", 3),
)

# The 100-odd commonest surnames with rough population shares (per mille).
SURNAMES = (
    ("王", 71), ("李", 70), ("张", 68), ("刘", 54), ("陈", 45), ("杨", 31), ("黄", 23),
    ("赵", 22), ("吴", 20), ("周", 19), ("徐", 16), ("孙", 15), ("马", 14), ("朱", 13),
    ("胡", 13), ("郭", 12), ("何", 12), ("高", 11), ("林", 11), ("罗", 9), ("郑", 9),
    ("梁", 9), ("谢", 8), ("宋", 7), ("唐", 7), ("许", 6), ("韩", 6), ("冯", 6), ("邓", 6),
    ("曹", 6), ("彭", 5), ("曾", 5), ("肖", 5), ("田", 5), ("董", 5), ("袁", 4), ("潘", 4),
    ("于", 4), ("蒋", 4), ("蔡", 4), ("余", 4), ("杜", 4), ("叶", 4), ("程", 4), ("苏", 3),
    ("魏", 3), ("吕", 3), ("丁", 3), ("任", 3), ("沈", 3), ("姚", 3), ("卢", 3), ("姜", 3),
    ("崔", 3), ("钟", 3), ("谭", 3), ("陆", 3), ("汪", 2), ("范", 2), ("金", 2), ("石", 2),
    ("廖", 2), ("贾", 2), ("夏", 2), ("韦", 2), ("付", 2), ("方", 2), ("白", 2), ("邹", 2),
    ("孟", 2), ("熊", 2), ("秦", 2), ("邱", 2), ("江", 2), ("尹", 2), ("薛", 2), ("闫", 2),
    ("段", 2), ("雷", 2), ("侯", 2), ("龙", 2), ("史", 2), ("陶", 1), ("黎", 1), ("贺", 1),
    ("顾", 1), ("毛", 1), ("郝", 1), ("龚", 1), ("邵", 1), ("万", 1), ("钱", 1), ("严", 1),
    ("覃", 1), ("武", 1), ("戴", 1), ("莫", 1), ("孔", 1), ("向", 1), ("汤", 1), ("欧阳", 1),
)  # fmt: skip

GIVEN_FEMALE = (
    "婷静敏丽娟芳雪琳欣怡佳悦雨萱涵诗晓颖慧倩璐瑶思彤洁妍嘉玥梦"
    "月蕾莉菲露媛霞艳燕玲娜茜晴岚薇可桐心语若汐冉"
)
GIVEN_MALE = (
    "伟强磊军洋勇杰涛浩宇轩博文鹏辉健俊明晨昊然凯峰志翔斌超刚鑫"
    "亮宁波飞龙威阳帆泽睿铭航楠旭晖毅诚彬哲远"
)
GIVEN_NEUTRAL = "子一嘉思雨晓文安欣佳梓诗可乐宁清"

# What some people call themselves on WeChat, Douyin or Xiaohongshu instead of a real name.
NICKNAMES = (
    "Cathy", "Momo", "小鱼儿", "阿杰", "一只喵", "晴天", "Leo", "Yuki", "橙子", "木子", "Coco",
    "大白", "Sunny", "小满", "七七", "Vivian", "Kevin", "咖啡续命", "早八人", "Lemon", "豆豆",
    "阿May", "Tina", "小熊软糖", "Echo", "拿铁不加糖", "Zoe", "阿飞", "山间晚风", "Mia",
)  # fmt: skip

EMAIL_HANDLES = (
    "sunny", "amy", "lucky", "yiyi", "momo", "leo", "kiki", "jason", "cathy", "tony", "vivian",
    "anna", "zoe", "daisy", "mia", "kevin", "eric", "sky", "coffee", "xiaoyu", "lily", "jack",
)  # fmt: skip
EMAIL_DOMAINS = (("qq.com", 55), ("163.com", 20), ("126.com", 8), ("foxmail.com", 7),
                 ("gmail.com", 5), ("outlook.com", 5))  # fmt: skip


# The brand's catalog, as its mini program and its store tills name it (product_id = SKU).
# Prices are integer fen.
DRINK, FOOD, RETAIL, GEAR, GIFT = "drink", "food", "retail", "gear", "gift"


@dataclass(frozen=True)
class Product:
    product_id: str
    name: str
    category: str
    price_fen: int
    kind: str  # drink / food / retail / gear / gift: what kind of basket it goes into
    weight: int  # how often it is picked, against the others of its kind
    taste: str = ""  # the 偏好 tag whose holders favour it
    oat: bool = False  # made with oat milk: never sold to a contact with 燕麦过敏


PRODUCTS = (
    Product("SY-CF-001", "山隅美式", "咖啡", 2200, DRINK, 26, "美式"),
    Product("SY-CF-002", "经典拿铁", "咖啡", 2600, DRINK, 24, "拿铁"),
    Product("SY-CF-003", "燕麦拿铁", "咖啡", 2900, DRINK, 14, "燕麦奶", oat=True),
    Product("SY-CF-004", "生椰拿铁", "咖啡", 2900, DRINK, 16, "拿铁"),
    Product("SY-CF-005", "澳白", "咖啡", 2800, DRINK, 9, "拿铁"),
    Product("SY-CF-006", "低因美式", "咖啡", 2400, DRINK, 5, "低因"),
    Product("SY-CF-007", "手冲·云南保山", "咖啡", 3800, DRINK, 5, "手冲"),
    Product("SY-CF-008", "手冲·埃塞俄比亚耶加雪菲", "咖啡", 4200, DRINK, 4, "手冲"),
    Product("SY-TE-001", "冰摇柠檬茶", "茶饮", 2000, DRINK, 6),
    Product("SY-BK-001", "黄油可颂", "烘焙轻食", 1600, FOOD, 10),
    Product("SY-BK-002", "巴斯克芝士蛋糕", "烘焙轻食", 3200, FOOD, 5),
    Product("SY-BK-003", "火腿芝士三明治", "烘焙轻食", 2800, FOOD, 6),
    Product("SY-BN-001", "山隅拼配咖啡豆 250g", "咖啡豆", 9800, RETAIL, 8, "美式"),
    Product("SY-BN-002", "云南保山咖啡豆 200g", "咖啡豆", 8800, RETAIL, 5, "手冲"),
    Product("SY-BN-003", "耶加雪菲咖啡豆 200g", "咖啡豆", 12800, RETAIL, 4, "手冲"),
    Product("SY-DR-001", "挂耳咖啡 10片装", "挂耳冷萃", 5900, RETAIL, 10),
    Product("SY-DR-002", "冷萃咖啡液 6瓶装", "挂耳冷萃", 7900, RETAIL, 7, "美式"),
    Product("SY-GR-001", "山隅随行杯", "周边器具", 12900, GEAR, 6),
    Product("SY-GR-002", "手冲入门套装", "周边器具", 39900, GEAR, 3, "手冲"),
    Product("SY-GR-003", "手摇磨豆机", "周边器具", 59900, GEAR, 2, "手冲"),
    Product("SY-GF-001", "山隅咖啡礼盒", "礼盒", 26800, GIFT, 1),
)

# Coupons of the mini program's 领券中心: (coupon_id, name, threshold_fen, discount_fen).
COUPONS = (
    ("CP-NEW10", "新人券 满30减10", 3000, 1000),
    ("CP-DAY18", "会员日 满50减15", 5000, 1500),
    ("CP-WED5", "周三咖啡日 满25减5", 2500, 500),
    ("CP-BEAN20", "咖啡豆 满150减20", 15000, 2000),
)
