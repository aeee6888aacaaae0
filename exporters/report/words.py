"""The report's words in Vietnamese and English, and how its numbers are written in each.

Vietnamese administrative texts write 97,8% and 1.250.000 (comma for decimals, dot for thousands);
the English version writes 97.8% and 1,250,000.
"""

from __future__ import annotations

import datetime as dt
import math

from exporters.report.model import MET, NO_DATA, NOT_JUDGED, NOT_MET, Figure, Report, TargetView

AREAS = {
    "network": ("Hạ tầng mạng, đường truyền", "Network and links"),
    "data_centre": ("Trung tâm tích hợp dữ liệu", "Data integration centre"),
    "video_conference": ("Hội nghị truyền hình", "Video conference"),
    "portals": ("Cổng thông tin điện tử", "Web portals"),
    "public_services": ("Dịch vụ công trực tuyến", "Online public services"),
    "one_stop": ("Một cửa điện tử", "One-stop shop"),
    "e_documents": ("Văn bản điện tử", "Electronic documents"),
    "e_government": ("Chính quyền điện tử", "E-government"),
    "digital_signature": ("Chữ ký số", "Digital signatures"),
    "security": ("An toàn thông tin", "Information security"),
    "infrastructure": ("Hạ tầng kỹ thuật", "Technical infrastructure"),
    "human_resources": ("Nguồn nhân lực", "Human resources"),
    "education": ("Giáo dục", "Education"),
    "health": ("Y tế", "Health"),
    "e_tax": ("Thuế điện tử", "E-tax"),
    "e_business": ("Doanh nghiệp, thương mại điện tử", "E-business"),
    "investment": ("Đầu tư", "Investment"),
    "ict_industry": ("Công nghiệp CNTT", "ICT industry"),
    "ranking": ("Xếp hạng", "Rankings"),
    "society": ("Xã hội", "Society"),
    "transport": ("Giao thông", "Transport"),
    "e_office": ("Văn phòng điện tử", "E-office"),
    "e_procurement": ("Đấu thầu qua mạng", "E-procurement"),
    "e_social_insurance": ("Bảo hiểm xã hội điện tử", "Electronic social insurance"),
    "reporting": ("Hệ thống thông tin báo cáo", "Reporting information system"),
}

ROMAN = ["I", "II", "III", "IV", "V", "VI", "VII", "VIII", "IX", "X"]

WORDS: dict[str, dict[str, str]] = {
    "vi": {
        "motto1": "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
        "motto2": "Độc lập - Tự do - Hạnh phúc",
        "number": "Số: …/BC-{abbr}",
        "dateline": "{place}, ngày {d} tháng {m} năm {y}",
        "title": "BÁO CÁO",
        "subtitle": "Kết quả thực hiện {plan} {period}",
        "plan_default": "các chỉ tiêu kế hoạch ứng dụng công nghệ thông tin",
        "simulated": "SỐ LIỆU MÔ PHỎNG (tỉnh giả lập của egov-agent) — không dùng để báo cáo",
        "to_date": "Kỳ báo cáo chưa kết thúc: số liệu tính đến {at}.",
        "s_overview": "TỔNG QUAN",
        "s_plan": "KẾT QUẢ THỰC HIỆN CÁC CHỈ TIÊU CỦA KẾ HOẠCH",
        "s_ops": "MỤC TIÊU VẬN HÀNH (không phải chỉ tiêu của Kế hoạch)",
        "s_gaps": "SỐ LIỆU CÒN THIẾU",
        "s_basis": "CĂN CỨ CÁC CHỈ TIÊU",
        "s_charts": "BIỂU ĐỒ",
        "overview": ("Kỳ báo cáo: {period} ({start} – {end}). Số liệu lấy từ hệ thống giám sát egov-agent "
                     "({server}), tính tại thời điểm chốt số liệu {at}."),
        "counts": ("Chỉ tiêu của Kế hoạch: {total}; đạt {met}, chưa đạt {not_met}, chưa đánh giá được bằng số "
                   "{not_judged}, chưa có số liệu {no_data}."),
        "ops_counts": "Mục tiêu vận hành: {total}; đạt {met}, chưa đạt {not_met}, chưa có số liệu {no_data}.",
        "method": ("Tỷ lệ kết nối là tỷ lệ đơn vị có đường truyền hoạt động ít nhất {min} thời gian trong kỳ "
                   "(ngưỡng vận hành), trên tổng số đơn vị trong danh mục; trạng thái tại thời điểm chốt số "
                   "liệu được nêu kèm."),
        "col_no": "TT", "col_kpi": "Chỉ tiêu", "col_target": "Mục tiêu (thời hạn)", "col_value": "Kết quả",
        "col_ratio": "Tử số/Mẫu số", "col_verdict": "Đánh giá", "col_change": "So với kỳ trước",
        "col_cutoff": "Tại thời điểm chốt", "col_unit": "Đơn vị", "col_group": "Thuộc",
        "col_up": "Thời gian hoạt động", "col_down": "Thời gian gián đoạn", "col_district": "Đơn vị",
        "col_connected": "Kết nối", "col_reason": "Lý do", "col_doc": "Văn bản", "col_section": "Mục",
        "col_quote": "Trích dẫn",
        MET: "Đạt", NOT_MET: "Chưa đạt", NOT_JUDGED: "Chưa đánh giá được", NO_DATA: "Chưa có số liệu",
        "below": "Các đơn vị chưa đạt ({n}):",
        "interrupted": "Các đơn vị, hệ thống có gián đoạn ({n}):",
        "by_group": "Theo {level}:",
        "no_gaps": "Không có.",
        "no_figures": "Không có chỉ tiêu nào có số liệu trong kỳ (xem mục Số liệu còn thiếu).",
        "recipients": "Nơi nhận:",
        "archive": "- Lưu: VT.",
        "sign_note": "(Ký, ghi rõ họ tên, đóng dấu)",
        "chart_trend": "{title}: kết quả theo kỳ so với mục tiêu",
        "chart_groups": "{title}: theo {level}",
        "target": "mục tiêu", "yes": "Có", "no": "Không", "deadline": "hạn",
        "district": "huyện", "department": "sở, ngành",
        "hours": "{h} giờ", "days": "{d} ngày {h} giờ",
    },
    "en": {
        "motto1": "SOCIALIST REPUBLIC OF VIETNAM",
        "motto2": "Independence - Freedom - Happiness",
        "number": "No.: …/BC-{abbr}",
        "dateline": "{place}, {date}",
        "title": "REPORT",
        "subtitle": "Results of {plan}, {period}",
        "plan_default": "the IT plan's targets",
        "simulated": "SIMULATED DATA (egov-agent's simulated province) — not for reporting",
        "to_date": "The period has not ended: figures to {at}.",
        "s_overview": "OVERVIEW",
        "s_plan": "THE PLAN'S TARGETS",
        "s_ops": "OPERATIONAL OBJECTIVES (not targets of the plan)",
        "s_gaps": "DATA GAPS",
        "s_basis": "WHERE EACH TARGET COMES FROM",
        "s_charts": "CHARTS",
        "overview": ("Period: {period} ({start} – {end}). Figures from the egov-agent monitoring history "
                     "({server}), read at the cut-off {at}."),
        "counts": ("Targets of the plan: {total}; met {met}, not met {not_met}, not judged by a number "
                   "{not_judged}, no data {no_data}."),
        "ops_counts": "Operational objectives: {total}; met {met}, not met {not_met}, no data {no_data}.",
        "method": ("A coverage is the share of the inventory's units whose link was up at least {min} of the "
                   "period (an operational threshold); the state at the cut-off is given beside it."),
        "col_no": "No.", "col_kpi": "Target", "col_target": "Target (deadline)", "col_value": "Result",
        "col_ratio": "Numerator/denominator", "col_verdict": "Verdict", "col_change": "Change",
        "col_cutoff": "At the cut-off", "col_unit": "Unit", "col_group": "In",
        "col_up": "Up", "col_down": "Down time", "col_district": "Unit",
        "col_connected": "Connected", "col_reason": "Why", "col_doc": "Document", "col_section": "Section",
        "col_quote": "Quote",
        MET: "Met", NOT_MET: "Not met", NOT_JUDGED: "Not judged", NO_DATA: "No data",
        "below": "Units below ({n}):",
        "interrupted": "Units and systems with interruptions ({n}):",
        "by_group": "By {level}:",
        "no_gaps": "None.",
        "no_figures": "No target has a figure for the period (see the data gaps).",
        "recipients": "To:",
        "archive": "- Archive.",
        "sign_note": "(Signature, full name, seal)",
        "chart_trend": "{title}: result per period against the target",
        "chart_groups": "{title}: by {level}",
        "target": "target", "yes": "Yes", "no": "No", "deadline": "by",
        "district": "district", "department": "department",
        "hours": "{h} h", "days": "{d} d {h} h",
    },
}


# Why a KPI has no figure (``code`` or ``code|detail``), and what weakens one that has.
GAPS = {
    "no_data": ("không có số liệu trong kỳ", "no data in the period"),
    "no_member_counters": ("không có bộ đếm theo từng đơn vị trong kỳ: tác tử không chạy, hoặc lịch sử không "
                           "được lưu đủ lâu", "no per-unit counters in the period: the agent did not run, or the "
                           "history is not kept this long"),
    "no_probe_counters": ("không có bộ đếm kết quả đo trong kỳ", "no probe counters in the period"),
    "no_figure_supplied": ("chưa có số liệu được cung cấp", "no figure supplied"),
    "no_period_figure": ("không có số liệu của kỳ trong lịch sử", "no figure for the period in the history"),
    "stale": ("số liệu đã cũ (quá thời hạn stale_after)", "stale: older than the configured stale_after"),
    "custom_range": ("hệ thống nguồn báo cáo theo kỳ (quý, năm): không có số liệu cho khoảng ngày tùy chọn",
                     "the systems report per period (quarter, year): not available for a custom range"),
    "inventory_incomplete": ("danh mục đơn vị chưa đầy đủ: {detail}", "inventory incomplete: {detail}"),
    "pending": ("tại thời điểm chốt: {detail}", "at the cut-off: {detail}"),
    "observed": ("tác tử chỉ theo dõi được trung bình {detail} thời gian của kỳ",
                 "the agent observed the units {detail} of the period on average"),
    "before_period": ("số liệu tính đến ngày {detail}, trước kỳ báo cáo", "the figure refers to {detail}, "
                      "before the period"),
    "quarters": ("{detail} quý có số liệu", "{detail} quarters have figures"),
    "approximate": ("gần đúng: số liệu theo tháng được xếp vào kỳ không bắt đầu từ ngày 1",
                    "approximate: monthly figures put into a period that does not begin on the 1st"),
    "stale_source": ("nguồn dữ liệu đã cũ tại thời điểm chốt", "the source was stale at the cut-off"),
}


def gap(text: str, lang: str) -> str:
    from exporters.table import PENDING_WORDS

    code, _, detail = text.partition("|")
    vi, en = GAPS.get(code, (text, text))
    if code == "pending":
        detail = PENDING_WORDS.get(detail, (detail, detail))[0 if lang == "vi" else 1]
    elif code == "observed":
        detail = value(float(detail), "ratio", lang)
    elif code == "before_period":
        detail = date(dt.date.fromisoformat(detail), lang)
    return (vi if lang == "vi" else en).format(detail=detail)


def gaps(texts: list[str], lang: str) -> str:
    return "; ".join(gap(t, lang) for t in texts)


def words(lang: str) -> dict[str, str]:
    return WORDS[lang]


def area_name(area: str, lang: str) -> str:
    vi, en = AREAS.get(area, (area.replace("_", " ").capitalize(),) * 2)
    return vi if lang == "vi" else en


def title(figure: Figure, lang: str) -> str:
    return figure.title_vi if lang == "vi" else (figure.title_en or figure.title_vi)


def number(value: float, lang: str, decimals: int = 0) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\0").replace(".", ",").replace("\0", ".") if lang == "vi" else text


def value(v: float | None, unit: str, lang: str) -> str:
    if v is None:
        return "—"
    if unit == "yes_no":
        return WORDS[lang]["yes"] if v >= 1 else WORDS[lang]["no"]
    if unit == "ratio":
        percent = math.floor(v * 10000 + 1e-6) / 100  # never rounded up: 99.996% is not 100%
        decimals = 0 if percent.is_integer() else (1 if (percent * 10).is_integer() else 2)
        return number(percent, lang, decimals) + "%"
    if float(v).is_integer():
        return number(v, lang)
    return number(v, lang, 2)


def change(figure: Figure, lang: str) -> str:
    if figure.change is None:
        return "—"
    if figure.unit == "ratio":
        points = round(figure.change * 100, 2)
        sign = "+" if points > 0 else ("−" if points < 0 else "±")
        return f"{sign}{number(abs(points), lang, 2)} " + ("điểm %" if lang == "vi" else "pp")
    sign = "+" if figure.change > 0 else ("−" if figure.change < 0 else "±")
    return sign + value(abs(figure.change), figure.unit, lang)


def target(t: TargetView | None, unit: str, lang: str) -> str:
    if t is None:
        return "—"
    when = f" ({WORDS[lang]['deadline']} {date(t.deadline, lang)})"
    if t.comparator == "qualitative":
        return f"«{t.text}»{when}"
    if t.comparator == "range":
        return f"{value(t.low, unit, lang)}–{value(t.high, unit, lang)}{when}"
    symbol = {"approx": "≈", "=": "=", ">=": "≥", "<=": "≤"}.get(t.comparator, t.comparator)
    return f"{symbol} {value(t.value, unit, lang)}{when}"


def ratio(figure: Figure, lang: str) -> str:
    if figure.numerator is None or figure.denominator is None:
        return "—"
    return f"{value(figure.numerator, 'count', lang)}/{value(figure.denominator, 'count', lang)}"


def cutoff(figure: Figure, lang: str) -> str:
    if figure.cutoff_value is None:
        return "—"
    text = value(figure.cutoff_value, figure.unit, lang)
    if figure.cutoff_numerator is not None and figure.cutoff_denominator is not None:
        text += f" ({value(figure.cutoff_numerator, 'count', lang)}/{value(figure.cutoff_denominator, 'count', lang)})"
    return text


def date(day: dt.date, lang: str) -> str:
    return day.strftime("%d/%m/%Y") if lang == "vi" else day.isoformat()


def duration(seconds: float, lang: str) -> str:
    hours = round(seconds / 3600, 1)
    if hours < 24:
        return WORDS[lang]["hours"].format(h=number(hours, lang, 1))
    days, rest = divmod(round(seconds / 3600), 24)
    return WORDS[lang]["days"].format(d=days, h=rest)


def period_name(report: Report, lang: str) -> str:
    """«quý III năm 2026», «năm 2026», «6 tháng đầu năm 2026»; English alike."""
    year = report.window[:4]
    if report.window_kind == "quarter":
        return f"quý {ROMAN[report.window_number - 1]} năm {year}" if lang == "vi" else \
            f"Q{report.window_number} {year}"
    if report.window_kind == "year":
        return f"năm {year}" if lang == "vi" else year
    if report.window_kind == "half":
        if lang == "vi":
            return f"6 tháng {'đầu' if report.window_number == 1 else 'cuối'} năm {year}"
        return f"{'first' if report.window_number == 1 else 'second'} half of {year}"
    span = f"{date(report.start, lang)} – {date(report.last_day, lang)}"
    return f"từ {span}" if lang == "vi" else f"from {span}"


def level_name(level: str, lang: str) -> str:
    return WORDS[lang].get(level, level)
